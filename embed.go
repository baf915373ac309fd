// Package agencyplane holds build-time assets shared by the binaries.
package agencyplane

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the REST API, served at
// /openapi.json. `make generate` writes it: protoc-gen-openapiv2, then
// tools/openapi3 (see there why not protoc-gen-openapiv3).
//
//go:embed gen/openapiv3/agency.openapi.json
var OpenAPI []byte
