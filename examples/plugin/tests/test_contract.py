"""The plugin runs reidkit's own contract checks on itself."""
from reidkit_kmeans_proxy import KMeansProxy

from reidkit.testing import check_method


def test_kmeans_proxy_meets_the_method_contract(tmp_path):
    results = check_method(KMeansProxy, tmp_path)
    assert set(results) == {"infrared-to-visible", "visible-to-infrared"}
