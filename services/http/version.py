"""Where the API lives and which version it is: `/api/v1`, version 1.0.0 (semantic).

Every answer of the API says its full version in the `API-Version` header
(NL API Design Rules, API-57); the path carries only the major version.
"""

API_PATH = "/api/v1"
API_VERSION = "1.0.0"
VERSION_HEADER = "API-Version"
