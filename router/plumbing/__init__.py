"""The HTTP plumbing both API surfaces (`/v1` and `/admin`) share: route tables, bodies and
parameters, errors, middlewares, the wire messages and the OpenAPI document."""
