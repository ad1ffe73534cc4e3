"""The HTTP API: FastAPI app, dependencies, error mapping and one router per resource."""
