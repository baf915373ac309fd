# Builds agencyd and instantly-sim into a small static image.
FROM golang:1.26 AS build
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
ENTRYPOINT ["/usr/local/bin/agencyd"]
