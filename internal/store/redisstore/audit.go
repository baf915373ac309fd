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
// increasing with time, trimmed by age with XADD MINID and, with
// AuditMaxEvents, by size with XTRIM MAXLEN ~ in the same round trip.
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
	add := &redis.XAddArgs{Stream: a.key(), MinID: minID, Values: []any{"e", data}}
	if a.s.opts.AuditMaxEvents <= 0 {
		id, err := a.s.rdb.XAdd(opCtx, add).Result()
		if err != nil {
			return a.s.wrap(opCtx, "append audit event", err)
		}
		e.ID = id
		return nil
	}
	// XADD takes one trimming strategy, so the size bound is a second
	// command in the same round trip. Approximate (~): Redis drops whole
	// stream nodes, which is cheap; an exact MAXLEN would split them.
	pipe := a.s.rdb.Pipeline()
	added := pipe.XAdd(opCtx, add)
	pipe.XTrimMaxLenApprox(opCtx, a.key(), a.s.opts.AuditMaxEvents, 0)
	_, _ = pipe.Exec(opCtx)
	id, err := added.Result()
	if err != nil {
		return a.s.wrap(opCtx, "append audit event", err)
	}
	// A failed trim is redone by the next append: the event is stored.
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
