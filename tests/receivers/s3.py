"""The S3 side of the log stream tests, with boto3 (AWS's own SDK), against
moto's S3 API server: makes a bucket, or reads every object of one back.

    s3.py ENDPOINT create BUCKET
    s3.py ENDPOINT read BUCKET

`read` prints one JSON document: {"objects": [{"key", "lines", "newline_ended"}]}
in key order, each object gunzipped and its lines parsed as JSON, so the
test sees what a SIEM reading the bucket would see.
"""

import gzip
import json
import sys

import boto3


def main():
    endpoint, command, bucket = sys.argv[1:4]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSTREAMS",
        aws_secret_access_key="test-secret-access-key",
    )
    if command == "create":
        s3.create_bucket(Bucket=bucket)
        print(json.dumps({"created": bucket}))
        return
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            text = gzip.decompress(body).decode("utf-8")
            lines = [json.loads(line) for line in text.split("\n") if line]
            objects.append({"key": item["Key"], "lines": lines, "newline_ended": text.endswith("\n")})
    objects.sort(key=lambda o: o["key"])
    print(json.dumps({"objects": objects}))


if __name__ == "__main__":
    main()
