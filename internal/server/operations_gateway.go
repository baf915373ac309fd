package server

import (
	"context"
	"net/http"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"

	longrunninggw "github.com/agencyplane/agencyplane/gen/google/longrunning"
)

// RegisterOperationsGateway serves google.longrunning.Operations over REST:
// the generated routes, plus GET /v1/operations routed to ListOperations.
// That path also matches GetOperation's /v1/{name=operations/**} (** may
// match nothing), which the mux would otherwise prefer.
func RegisterOperationsGateway(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	if err := longrunninggw.RegisterOperationsHandler(ctx, mux, conn); err != nil {
		return err
	}
	client := longrunningpb.NewOperationsClient(conn)
	nameParam := utilities.NewDoubleArray([][]string{{"name"}})
	return mux.HandlePath(http.MethodGet, "/v1/operations", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, outbound := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, longrunningpb.Operations_ListOperations_FullMethodName,
			runtime.WithHTTPPathPattern("/v1/operations"))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, outbound, w, r, err)
			return
		}
		req := &longrunningpb.ListOperationsRequest{Name: "operations"}
		if err := r.ParseForm(); err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		if err := runtime.PopulateQueryParameters(req, r.Form, nameParam); err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.ListOperations(ctx, req, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, outbound, w, r, resp, mux.GetForwardResponseOptions()...)
	})
}
