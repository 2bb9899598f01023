"""The training pipeline: one SageMaker Pipeline per model, run once per tenant with that tenant's parameters.

`builder` is the only module of the project that imports the SageMaker SDK; it turns a model repo's
`mlops.yaml` into a pipeline definition. `parameters` (pure) computes an execution's parameter values for a
tenant, and `source` (pure) packs a model repository into the source bundle the steps run. Importing this
package imports neither sagemaker nor boto3.
"""
