package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// router matches a method and path against a route table. Literal segments beat {wildcards}
// (so /workspace-group-members/admin wins over /workspace-group-members/{id}), and an unknown
// path or method is a plain 404 as in Fastify, never a 405.
type router struct {
	routes []*compiledRoute
}

type compiledRoute struct {
	route
	segments []string
	literals int
	schema   schema // request body schema; nil when the route takes no body
	query    schema // query parameters as one object schema; nil when it has none
}

func newRouter(routes []route, spec *apiSpec) *router {
	rt := &router{}
	for _, r := range routes {
		c := &compiledRoute{route: r, segments: strings.Split(r.pattern, "/")}
		for _, seg := range c.segments {
			if !isParam(seg) {
				c.literals++
			}
		}
		if c.status == 0 {
			c.status = http.StatusOK
		}
		c.schema = bodySchemaFor(r, spec)
		c.query = spec.querySchema(r.method, r.pattern)
		rt.routes = append(rt.routes, c)
	}
	return rt
}

// bodySchemaFor resolves a route's request schema once, at start-up.
func bodySchemaFor(r route, spec *apiSpec) schema {
	if r.bodySchema != "" {
		var s schema
		if err := json.Unmarshal([]byte(r.bodySchema), &s); err != nil {
			panic(fmt.Sprintf("sim: route %s %s: bad inline schema: %v", r.method, r.pattern, err))
		}
		return s
	}
	from := r.bodyFrom
	if from == "" {
		from = r.method + " " + r.pattern
	}
	method, path, _ := strings.Cut(from, " ")
	return spec.requestSchema(method, path)
}

// match finds the route for r and stores its path parameters on r (r.PathValue).
func (rt *router) match(r *http.Request) *compiledRoute {
	segs := strings.Split(r.URL.Path, "/")
	var best *compiledRoute
	for _, c := range rt.routes {
		if c.method == r.Method && c.matches(segs) && (best == nil || c.literals > best.literals) {
			best = c
		}
	}
	if best != nil {
		for i, seg := range best.segments {
			if isParam(seg) {
				r.SetPathValue(seg[1:len(seg)-1], segs[i])
			}
		}
	}
	return best
}

func (c *compiledRoute) matches(segs []string) bool {
	if len(segs) != len(c.segments) {
		return false
	}
	for i, seg := range c.segments {
		if isParam(seg) {
			if segs[i] == "" {
				return false
			}
		} else if seg != segs[i] {
			return false
		}
	}
	return true
}

func isParam(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}
