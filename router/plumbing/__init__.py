"""The HTTP plumbing both API surfaces (`/v1` and `/admin`) share: route tables, bodies and
parameters, errors, the gate every handler is wrapped in, the wire messages and the OpenAPI document."""
