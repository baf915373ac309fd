// Package redisstore is the production backend: state in Redis through
// go-redis v9, shared by every agencyd replica.
//
// Layout (all registry keys share the {registry} hash tag so the atomic
// scripts work on Redis Cluster too):
//
//	<prefix>{registry}:ws:<name>            JSON of store.Workspace (credential sealed)
//	<prefix>{registry}:ws-index             ZSET of names, all score 0 (lexicographic paging)
//	<prefix>{registry}:ws-by-instantly:<id> name holding that Instantly workspace
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/store"
)

// Options configures the Redis backend.
type Options struct {
	// Prefix is prepended to every key, so several deployments can share a
	// Redis. Defaults to "agency:".
	Prefix string
	// OpTimeout bounds each Redis round trip, so a stalled Redis fails a
	// request quickly instead of hanging it. Defaults to 2s.
	OpTimeout time.Duration
	// AuditRetention trims audit events older than this (XADD MINID).
	// Defaults to 90 days.
	AuditRetention time.Duration
	// AuditMaxEvents also bounds the audit stream by size (XTRIM MAXLEN ~,
	// so a little more may stay); 0 bounds it by age only.
	AuditMaxEvents int64
	// Now is the clock used for audit timestamps' retention; default time.Now.
	Now func() time.Time
}

// Store is the Redis backend.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
	ws   *workspaces
}

// New wraps a go-redis client. The caller keeps ownership of rdb unless it
// calls Close.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "agency:"
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 2 * time.Second
	}
	if opts.AuditRetention <= 0 {
		opts.AuditRetention = 90 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{rdb: rdb, opts: opts}
	s.ws = &workspaces{s: s}
	return s
}

// Workspaces implements store.Store.
func (s *Store) Workspaces() store.Workspaces { return s.ws }

// Tokens implements store.Store.
func (s *Store) Tokens() store.Tokens { return tokens{s} }

// Audit implements store.Store.
func (s *Store) Audit() store.Audit { return audit{s} }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.wrap(ctx, "ping", err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.rdb.Close() }

// errOpTimeout is the cause of an operation context that hit OpTimeout, so
// wrap can tell our timeout (Redis is slow) from the caller's deadline.
var errOpTimeout = errors.New("redis operation timed out")

func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.opts.OpTimeout, errOpTimeout)
}

// wrap turns a Redis failure into store.ErrUnavailable (keeping the cause for
// logs) unless the caller's own context ended, which keeps its meaning.
func (s *Store) wrap(opCtx context.Context, op string, err error) error {
	if cause := context.Cause(opCtx); cause != nil && !errors.Is(cause, errOpTimeout) {
		return fmt.Errorf("redis %s: %w", op, cause)
	}
	return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
}

func (s *Store) key(parts ...string) string {
	return s.slotKey("registry", parts...)
}

// slotKey builds "<prefix>{<slot>}:<parts...>"; keys that one script or
// transaction touches share the slot.
func (s *Store) slotKey(slot string, parts ...string) string {
	k := s.opts.Prefix + "{" + slot + "}:"
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

type workspaces struct{ s *Store }

func (w *workspaces) recordKey(name string) string  { return w.s.key("ws", name) }
func (w *workspaces) indexKey() string              { return w.s.key("ws-index") }
func (w *workspaces) instantlyKey(id string) string { return w.s.key("ws-by-instantly", id) }

// createScript checks both uniqueness constraints and writes all three keys
// in one atomic step.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return 0
`)

func (w *workspaces) Create(ctx context.Context, ws *store.Workspace) error {
	data, err := json.Marshal(ws)
	if err != nil {
		return fmt.Errorf("encode workspace: %w", err)
	}
	ctx, cancel := w.s.opCtx(ctx)
	defer cancel()
	keys := []string{w.recordKey(ws.Name), w.indexKey(), w.instantlyKey(ws.InstantlyWorkspaceID)}
	res, err := createScript.Run(ctx, w.s.rdb, keys, data, ws.Name).Int()
	if err != nil {
		return w.s.wrap(ctx, "create workspace", err)
	}
	switch res {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("create %s: %w", ws.Name, store.ErrAlreadyExists)
	case 2:
		return fmt.Errorf("create %s: %w", ws.Name, store.ErrDuplicateInstantlyWorkspace)
	default:
		return fmt.Errorf("create %s: %w: unexpected script result %d", ws.Name, store.ErrUnavailable, res)
	}
}

func (w *workspaces) Get(ctx context.Context, name string) (*store.Workspace, error) {
	ctx, cancel := w.s.opCtx(ctx)
	defer cancel()
	data, err := w.s.rdb.Get(ctx, w.recordKey(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, w.s.wrap(ctx, "get workspace", err)
	}
	return decode(data)
}

func (w *workspaces) GetByInstantlyID(ctx context.Context, id string) (*store.Workspace, error) {
	opCtx, cancel := w.s.opCtx(ctx)
	name, err := w.s.rdb.Get(opCtx, w.instantlyKey(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		err = w.s.wrap(opCtx, "get workspace by instantly id", err)
	}
	cancel()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get instantly %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	// The index and the record are written together, but a delete may land
	// between these two reads: then it is simply not found.
	return w.Get(ctx, name)
}

// listBatch is how many index entries one round trip reads; label filters
// may skip many, so List keeps reading until the page is full.
const listBatch = 256

func (w *workspaces) List(ctx context.Context, q store.ListQuery) ([]*store.Workspace, error) {
	var out []*store.Workspace
	cursor := q.After
	for len(out) < q.Limit {
		page, next, err := w.listBatch(ctx, cursor)
		if err != nil {
			return nil, err
		}
		for _, ws := range page {
			if q.Match == nil || q.Match(ws.Labels) {
				out = append(out, ws)
				if len(out) == q.Limit {
					break
				}
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return out, nil
}

// listBatch reads the index entries after cursor and their records; next is
// the last name read, or "" when the index has no more. Records deleted
// between the two reads are skipped.
func (w *workspaces) listBatch(ctx context.Context, cursor string) (page []*store.Workspace, next string, err error) {
	ctx, cancel := w.s.opCtx(ctx)
	defer cancel()
	minLex := "-"
	if cursor != "" {
		minLex = "(" + cursor
	}
	names, err := w.s.rdb.ZRangeByLex(ctx, w.indexKey(), &redis.ZRangeBy{Min: minLex, Max: "+", Count: listBatch}).Result()
	if err != nil {
		return nil, "", w.s.wrap(ctx, "list workspaces", err)
	}
	if len(names) == 0 {
		return nil, "", nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = w.recordKey(n)
	}
	vals, err := w.s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, "", w.s.wrap(ctx, "list workspaces", err)
	}
	page = make([]*store.Workspace, 0, len(vals))
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		ws, err := decode([]byte(s))
		if err != nil {
			return nil, "", err
		}
		page = append(page, ws)
	}
	if len(names) < listBatch {
		return page, "", nil
	}
	return page, names[len(names)-1], nil
}

// maxUpdateAttempts bounds optimistic retries under contention.
const maxUpdateAttempts = 16

func (w *workspaces) Update(ctx context.Context, name string, fn func(*store.Workspace) error) (*store.Workspace, error) {
	key := w.recordKey(name)
	var result *store.Workspace
	for range maxUpdateAttempts {
		err := w.watch(ctx, func(tx *redis.Tx, opCtx context.Context) error {
			data, err := tx.Get(opCtx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("update %s: %w", name, store.ErrNotFound)
			}
			if err != nil {
				return w.s.wrap(opCtx, "update workspace", err)
			}
			cur, err := decode(data)
			if err != nil {
				return err
			}
			next := cur.Clone()
			if err := fn(next); err != nil {
				return err
			}
			if next.Name != cur.Name || next.InstantlyWorkspaceID != cur.InstantlyWorkspaceID {
				return fmt.Errorf("update %s: %w", name, store.ErrImmutable)
			}
			enc, err := json.Marshal(next)
			if err != nil {
				return fmt.Errorf("encode workspace: %w", err)
			}
			if err := w.exec(opCtx, tx, func(p redis.Pipeliner) { p.Set(opCtx, key, enc, 0) }); err != nil {
				return err
			}
			result = next
			return nil
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return result, err
	}
	return nil, fmt.Errorf("update %s: %w", name, store.ErrConflict)
}

func (w *workspaces) Delete(ctx context.Context, name string) error {
	key := w.recordKey(name)
	for range maxUpdateAttempts {
		err := w.watch(ctx, func(tx *redis.Tx, opCtx context.Context) error {
			data, err := tx.Get(opCtx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
			}
			if err != nil {
				return w.s.wrap(opCtx, "delete workspace", err)
			}
			cur, err := decode(data)
			if err != nil {
				return err
			}
			return w.exec(opCtx, tx, func(p redis.Pipeliner) {
				p.Del(opCtx, key, w.instantlyKey(cur.InstantlyWorkspaceID))
				p.ZRem(opCtx, w.indexKey(), name)
			})
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return fmt.Errorf("delete %s: %w", name, store.ErrConflict)
}

// watch runs fn in a WATCH transaction bounded by the per-operation timeout.
// fn's own errors pass through unchanged, as does TxFailedErr so callers
// retry; failures of Redis itself become ErrUnavailable.
func (w *workspaces) watch(ctx context.Context, fn func(tx *redis.Tx, opCtx context.Context) error, keys ...string) error {
	opCtx, cancel := w.s.opCtx(ctx)
	defer cancel()
	var fnErr error
	err := w.s.rdb.Watch(opCtx, func(tx *redis.Tx) error {
		fnErr = fn(tx, opCtx)
		return fnErr
	}, keys...)
	if err == nil || errors.Is(err, redis.TxFailedErr) || (fnErr != nil && err == fnErr) {
		return err
	}
	return w.s.wrap(opCtx, "transaction", err)
}

// exec runs the queued writes of a WATCH transaction.
func (w *workspaces) exec(ctx context.Context, tx *redis.Tx, queue func(redis.Pipeliner)) error {
	_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
		queue(p)
		return nil
	})
	if err == nil || errors.Is(err, redis.TxFailedErr) {
		return err
	}
	return w.s.wrap(ctx, "exec", err)
}

func decode(data []byte) (*store.Workspace, error) {
	var ws store.Workspace
	if err := json.Unmarshal(data, &ws); err != nil {
		return nil, fmt.Errorf("decode workspace: %w: %w", store.ErrUnavailable, err)
	}
	return &ws, nil
}
