"""The OpenAPI 3.0 document of the API, generated from its models, and Swagger UI."""
