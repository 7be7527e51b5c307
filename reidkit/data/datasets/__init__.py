"""Dataset modules, one per dataset; registered under the ``reidkit.datasets`` entry points."""
