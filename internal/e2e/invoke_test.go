package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// invoker calls any RPC by its full name ("agency.v1.MemberService/InviteMember"),
// over gRPC or over REST, so one test case runs on both transports. The REST
// request is derived from the method's google.api.http annotation the same
// way a REST client reading the OpenAPI document would build it.
type invoker interface {
	Invoke(ctx context.Context, method string, req, resp proto.Message) error
	Transport() string
}

type grpcInvoker struct {
	conn  *grpc.ClientConn
	token string
}

func (g grpcInvoker) Transport() string { return "grpc" }

func (g grpcInvoker) Invoke(ctx context.Context, method string, req, resp proto.Message) error {
	if g.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.token)
	}
	return g.conn.Invoke(ctx, "/"+method, req, resp)
}

type restInvoker struct {
	api *restAPI
}

func (r restInvoker) Transport() string { return "rest" }

var pathVarRE = regexp.MustCompile(`\{([a-z_.]+)(=[^}]*)?\}`)

func (r restInvoker) Invoke(ctx context.Context, method string, req, resp proto.Message) error {
	rule, err := httpRule(method)
	if err != nil {
		return err
	}
	var verb, tmpl string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		verb, tmpl = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		verb, tmpl = http.MethodPost, p.Post
	case *annotations.HttpRule_Patch:
		verb, tmpl = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		verb, tmpl = http.MethodDelete, p.Delete
	default:
		return fmt.Errorf("unsupported pattern %T", p)
	}
	fields := map[string]any{}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	used := map[string]bool{}
	path := pathVarRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		f := pathVarRE.FindStringSubmatch(m)[1]
		used[strings.Split(f, ".")[0]] = true
		return escapePath(fmt.Sprint(lookup(fields, f)))
	})
	var body []byte
	switch rule.GetBody() {
	case "":
		q := url.Values{}
		for k, v := range fields {
			if used[k] {
				continue
			}
			switch vv := v.(type) {
			case []any:
				for _, e := range vv {
					q.Add(k, fmt.Sprint(e))
				}
			default:
				q.Set(k, fmt.Sprint(vv))
			}
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
	case "*":
		body = raw
	default:
		sub := fields[rule.GetBody()]
		if sub == nil {
			sub = map[string]any{}
		}
		body, _ = json.Marshal(sub)
		for k, v := range fields {
			if k != rule.GetBody() && !used[k] {
				path += map[bool]string{true: "&", false: "?"}[strings.Contains(path, "?")] + url.QueryEscape(k) + "=" + url.QueryEscape(fmt.Sprint(v))
			}
		}
	}
	_, err = r.api.raw(ctx, verb, path, body, resp)
	return err
}

// escapePath keeps the slashes of resource names and escapes the rest.
func escapePath(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func lookup(m map[string]any, dotted string) any {
	var cur any = m
	for _, p := range strings.Split(dotted, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	if cur == nil {
		return ""
	}
	return cur
}

func httpRule(method string) (*annotations.HttpRule, error) {
	if method == "google.longrunning.Operations/WaitOperation" {
		// Its route comes from proto/google/longrunning/operations_http.yaml.
		return &annotations.HttpRule{Pattern: &annotations.HttpRule_Post{Post: "/v1/{name=operations/*}:wait"}, Body: "*"}, nil
	}
	svc, m, ok := strings.Cut(method, "/")
	if !ok {
		return nil, fmt.Errorf("method %q is not service/method", method)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, err
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(m))
	if md == nil {
		return nil, fmt.Errorf("no method %s", method)
	}
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if rule == nil {
		return nil, fmt.Errorf("%s has no HTTP rule", method)
	}
	return rule, nil
}

// invokers returns a gRPC and a REST invoker with the token.
func (e *env) invokers(token string) []invoker {
	return []invoker{grpcInvoker{conn: e.conn, token: token}, restInvoker{api: e.rest(token)}}
}
