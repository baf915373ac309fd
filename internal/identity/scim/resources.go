package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Schema URNs (RFC 7643, 7644).
const (
	SchemaUser         = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup        = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaError        = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaSPConfig     = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema       = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// Meta is a resource's metadata.
type Meta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location,omitempty"`
	Version      string `json:"version,omitempty"`
}

// Name is a user's name.
type Name struct {
	Formatted  string `json:"formatted,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

// Email is one of a user's addresses.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary Bool   `json:"primary,omitempty"`
}

// Ref points at a member or a group.
type Ref struct {
	Value   string `json:"value"`
	Display string `json:"display,omitempty"`
	Ref     string `json:"$ref,omitempty"`
}

// User is a SCIM User (the attributes agencyd keeps).
type User struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	UserName    string   `json:"userName"`
	Name        *Name    `json:"name,omitempty"`
	DisplayName string   `json:"displayName,omitempty"`
	Emails      []Email  `json:"emails,omitempty"`
	Active      Bool     `json:"active"`
	Groups      []Ref    `json:"groups,omitempty"`
	Meta        Meta     `json:"meta"`
}

// Group is a SCIM Group.
type Group struct {
	Schemas     []string `json:"schemas"`
	ID          string   `json:"id"`
	ExternalID  string   `json:"externalId,omitempty"`
	DisplayName string   `json:"displayName"`
	Members     []Ref    `json:"members"`
	Meta        Meta     `json:"meta"`
}

// Email is the address invitations go to: the primary email, else the
// work one, else the first, else userName when it is an address.
func (u *User) Email() string {
	for _, e := range u.Emails {
		if bool(e.Primary) && e.Value != "" {
			return strings.ToLower(e.Value)
		}
	}
	for _, e := range u.Emails {
		if e.Type == "work" && e.Value != "" {
			return strings.ToLower(e.Value)
		}
	}
	if len(u.Emails) > 0 && u.Emails[0].Value != "" {
		return strings.ToLower(u.Emails[0].Value)
	}
	if strings.Contains(u.UserName, "@") {
		return strings.ToLower(u.UserName)
	}
	return ""
}

// Bool is a SCIM boolean that also reads Entra's "True"/"False" strings.
type Bool bool

// UnmarshalJSON accepts true/false and their strings in any case.
func (b *Bool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = Bool(v)
		return nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			*b = true
			return nil
		case "false":
			*b = false
			return nil
		}
	case nil:
		*b = false
		return nil
	}
	return fmt.Errorf("not a boolean: %s", data)
}

// scimError is an error answer (RFC 7644 §3.12).
type scimError struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *scimError) Error() string { return e.Detail }

func badRequest(scimType, format string, args ...any) *scimError {
	return &scimError{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) *scimError {
	return &scimError{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q not found", kind, id)}
}

func isFnErr(err error) bool {
	var se *scimError
	return errors.As(err, &se)
}
