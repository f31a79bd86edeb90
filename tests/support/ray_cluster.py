"""A two-node Ray cluster on localhost for the executor tests: a head carrying ``target:a`` and a worker node
carrying ``target:b``, each its own raylet (ray.cluster_utils.Cluster starts them as ``ray start`` would)."""

from __future__ import annotations

NODE_CPUS = 2  # logical CPUs each node offers Ray; the tests pass --job-cpus NODE_CPUS
OBJECT_STORE_BYTES = 200 * 2**20


def start_two_node_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=NODE_CPUS, resources={"target:a": 1}, object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False))
    cluster.add_node(num_cpus=NODE_CPUS, resources={"target:b": 1}, object_store_memory=OBJECT_STORE_BYTES)
    cluster.wait_for_nodes()
    return cluster
