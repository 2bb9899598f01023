"""The local runtime: the local AWS (moto server provisioned by Terraform) and what moto does not do."""
