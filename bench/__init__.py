"""`csr-gateway bench`: the gateway against baselines, measured in the same run."""
