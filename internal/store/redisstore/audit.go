package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/store"
)

// The audit trail is one Redis Stream, <prefix>audit: append-only, ids
// increasing with time, trimmed by age with XADD MINID.
type audit struct{ s *Store }

func (a audit) key() string { return a.s.opts.Prefix + "audit" }

func (a audit) Append(ctx context.Context, e *store.AuditEvent) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	opCtx, cancel := a.s.opCtx(ctx)
	defer cancel()
	minID := strconv.FormatInt(a.s.opts.Now().Add(-a.s.opts.AuditRetention).UnixMilli(), 10)
	id, err := a.s.rdb.XAdd(opCtx, &redis.XAddArgs{Stream: a.key(), MinID: minID, Values: []any{"e", data}}).Result()
	if err != nil {
		return a.s.wrap(opCtx, "append audit event", err)
	}
	e.ID = id
	return nil
}

const auditBatch = 256

func (a audit) List(ctx context.Context, q store.AuditQuery) ([]*store.AuditEvent, error) {
	var out []*store.AuditEvent
	end := "+"
	if q.Before != "" {
		end = "(" + q.Before
	}
	start := "-"
	if !q.Since.IsZero() {
		start = strconv.FormatInt(q.Since.UnixMilli(), 10)
	}
	for len(out) < q.Limit {
		opCtx, cancel := a.s.opCtx(ctx)
		msgs, err := a.s.rdb.XRevRangeN(opCtx, a.key(), end, start, auditBatch).Result()
		if err != nil {
			err = a.s.wrap(opCtx, "list audit events", err)
		}
		cancel()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			var e store.AuditEvent
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return nil, fmt.Errorf("decode audit event: %w: %w", store.ErrUnavailable, err)
			}
			e.ID = m.ID
			if q.Match == nil || q.Match(&e) {
				out = append(out, &e)
				if len(out) == q.Limit {
					break
				}
			}
		}
		if len(msgs) < auditBatch {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}
