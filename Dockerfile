# Builds agencyd and instantly-sim into a small static image. The Go image
# is pinned to go.mod's version (TestDockerfileGoMatchesGoMod checks it).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/agencyd ./cmd/agencyd && \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/instantly-sim ./cmd/instantly-sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/agencyd /out/instantly-sim /usr/local/bin/
USER nonroot
EXPOSE 9090 8080
# No shell or curl in distroless: agencyd probes its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/agencyd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/agencyd"]
