"""Clustering for unsupervised re-ID: exact kNN, sparse k-reciprocal Jaccard distance, DBSCAN,
pseudo-labels, centroids, k-means with pluggable updates, cluster statistics.

``pseudo_labels(features)`` reproduces the k-reciprocal Jaccard + DBSCAN lineage (SpCL, OpenUnReID,
ClusterContrast: :mod:`reidkit.cluster.jaccard`) with O(N k) memory instead of three N x N matrices.
Approximate kNN for very large N: :mod:`reidkit.cluster.ann`.
"""
from .ann import faiss_knn, knn_recall
from .centroids import cluster_centroids, modality_centroids
from .dbscan import dbscan
from .jaccard import jaccard_distance
from .kmeans import CentroidUpdate, KMeansResult, assign, kmeans, mean_update
from .knn import Neighbors, knn
from .labels import ClusterStatistics, cluster_statistics, pseudo_labels, relabel
from .link import centre_by_modality, match_rounds, mutual_nearest_pairs

__all__ = [
    "CentroidUpdate", "ClusterStatistics", "KMeansResult", "Neighbors", "assign", "centre_by_modality",
    "cluster_centroids", "cluster_statistics", "dbscan", "faiss_knn", "jaccard_distance", "kmeans", "knn",
    "knn_recall",
    "match_rounds", "mean_update", "modality_centroids", "mutual_nearest_pairs", "pseudo_labels", "relabel",
]
