"""Clustering: exact kNN, sparse k-reciprocal Jaccard distance, DBSCAN, pseudo-labels, k-means."""
