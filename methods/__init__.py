"""First-party reidkit method plugins (installed as ``reidkit_methods``)."""
