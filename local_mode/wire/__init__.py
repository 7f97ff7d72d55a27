"""The service's wire protocols on 127.0.0.1: one HTTP server that answers unchanged boto3,
SageMaker SDK and AWS CLI code as SageMaker, sagemaker-runtime, CloudWatch Logs, STS and S3
would, and that runs nothing it cannot verify as signed (Signature Version 4) with credentials it
issued, because what it runs on request is containers.
"""
