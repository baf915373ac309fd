// Package agencyplane holds build-time assets shared by the binaries.
package agencyplane

import _ "embed"

// OpenAPI is the generated OpenAPI (Swagger 2.0) document of the REST API.
//
//go:embed gen/openapiv2/agency.swagger.json
var OpenAPI []byte
