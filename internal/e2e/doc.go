// Package e2e holds end-to-end tests: the real agencyd assembly (internal/app)
// on random ports, talking to the Instantly simulator over real HTTP, driven
// over gRPC and over REST with the same cases, on the embedded and the Redis
// backends.
package e2e
