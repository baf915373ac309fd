package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/replication"
)

// Redis is the production backend, shared by every replica.
//
// Layout (<p> = prefix; one operation's keys share the {op:<id>} hash tag,
// so its scripts also run on Redis Cluster):
//
//	<p>{op:<id>}           HASH rec (JSON Record), head (rec without the
//	                            request and entries, for List), total, done, failed,
//	                            o:<OUTCOME> counts, cancel, update, end (ms)
//	<p>{op:<id>}:results   HASH item index → result (sealed when secret)
//	<p>{op:<id>}:failed    ZSET failed item indices
//	<p>{op:<id>}:running   HASH entry → items not recorded yet (held entries)
//	<p>{op:<id>}:intents   HASH item index → ms of a write that may have happened
//	<p>ops                 ZSET operation ids by creation time (ms)
//	<p>ops:queue           STREAM of tasks (op, entry), consumer group "workers"
//
// An operation's keys expire --operation-retention after it ends (twice
// that while it runs, so an abandoned one still goes away).
type Redis struct {
	rdb  redis.UniversalClient
	opts RedisOptions

	mu     sync.Mutex
	cursor string // XAUTOCLAIM cursor of this process
}

// RedisOptions tunes the Redis backend; zero values take the defaults.
type RedisOptions struct {
	Prefix       string        // default "agency:"
	ClaimTimeout time.Duration // default 30s
	Retention    time.Duration // default 7 days
	// OpTimeout bounds each round trip (default 2s); Take's blocking read
	// adds its block time.
	OpTimeout time.Duration
	// Block is how long Take waits for new tasks (default 1s).
	Block time.Duration
	// Replication makes the writes a failover must not lose (an
	// operation's creation, an item's intent) wait for replicas: without
	// it, a Sentinel failover right after the answer can drop an operation
	// its client was told about.
	Replication replication.Waiter
	Now         func() time.Time
}

const group = "workers"

// NewRedis returns the Redis backend.
func NewRedis(rdb redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "agency:"
	}
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = DefaultClaimTimeout
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 2 * time.Second
	}
	if opts.Block <= 0 {
		opts.Block = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Redis{rdb: rdb, opts: opts, cursor: "0-0"}
}

func (r *Redis) opKey(id string) string { return r.opts.Prefix + "{op:" + id + "}" }
func (r *Redis) keys(id string) []string {
	k := r.opKey(id)
	return []string{k, k + ":results", k + ":failed", k + ":running", k + ":intents"}
}
func (r *Redis) indexKey() string  { return r.opts.Prefix + "ops" }
func (r *Redis) streamKey() string { return r.opts.Prefix + "ops:queue" }

func (r *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.OpTimeout)
}

func (r *Redis) wrap(op string, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrFinished) || errors.Is(err, ErrRunning) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// Create implements Backend: the record and every task in one transaction.
func (r *Redis) Create(ctx context.Context, rec *Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	head, err := json.Marshal(headOf(rec))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.OpTimeout+r.opts.Replication.Budget()+time.Duration(len(rec.Entries))*10*time.Microsecond)
	defer cancel()
	if err := r.ensureGroup(ctx); err != nil {
		return r.wrap("create", err)
	}
	k := r.opKey(rec.ID)
	err = r.opts.Replication.Do(ctx, r.rdb, "operation creation", func(c redis.Cmdable) error {
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			fields := []any{"rec", data, "head", head, "total", rec.Total, "done", 0, "failed", 0, "update", ms(rec.CreateTime)}
			if rec.Total == 0 {
				fields = append(fields, "end", ms(rec.CreateTime))
			}
			p.HSet(ctx, k, fields...)
			p.PExpire(ctx, k, 2*r.opts.Retention)
			p.ZAdd(ctx, r.indexKey(), redis.Z{Score: float64(ms(rec.CreateTime)), Member: rec.ID})
			for i := range rec.Entries {
				p.XAdd(ctx, &redis.XAddArgs{Stream: r.streamKey(), Values: []any{"op", rec.ID, "entry", i}})
			}
			return nil
		})
		return err
	})
	return r.wrap("create", err)
}

func (r *Redis) ensureGroup(ctx context.Context) error {
	err := r.rdb.XGroupCreateMkStream(ctx, r.streamKey(), group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

// Get implements Backend.
func (r *Redis) Get(ctx context.Context, id string) (*Record, *Status, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	k := r.opKey(id)
	var h *redis.MapStringStringCmd
	var running *redis.StringSliceCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, k)
		running = p.HVals(ctx, k+":running")
		return nil
	})
	if err != nil {
		return nil, nil, r.wrap("get", err)
	}
	m := h.Val()
	if m["rec"] == "" {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var rec Record
	if err := json.Unmarshal([]byte(m["rec"]), &rec); err != nil {
		return nil, nil, fmt.Errorf("%w: operation %s: %w", ErrUnavailable, id, err)
	}
	st := &Status{Outcomes: map[string]int64{}, CancelRequested: m["cancel"] == "1"}
	st.Done, _ = strconv.ParseInt(m["done"], 10, 64)
	st.Failed, _ = strconv.ParseInt(m["failed"], 10, 64)
	for f, v := range m {
		if o, ok := strings.CutPrefix(f, "o:"); ok {
			st.Outcomes[o], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if u, err := strconv.ParseInt(m["update"], 10, 64); err == nil {
		st.UpdateTime = time.UnixMilli(u).UTC()
	}
	if e, err := strconv.ParseInt(m["end"], 10, 64); err == nil {
		st.EndTime = time.UnixMilli(e).UTC()
	}
	for _, v := range running.Val() {
		n, _ := strconv.ParseInt(v, 10, 64)
		st.Running += max(n, 0)
	}
	return &rec, st, nil
}

// List implements Backend.
func (r *Redis) List(ctx context.Context, q ListQuery) ([]*Record, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	maxScore := "+inf"
	if q.After != nil {
		maxScore = strconv.FormatInt(ms(q.After.CreateTime), 10)
	}
	var out []*Record
	offset := int64(0)
	for len(out) < q.Limit {
		zs, err := r.rdb.ZRevRangeByScoreWithScores(ctx, r.indexKey(), &redis.ZRangeBy{Max: maxScore, Min: "-inf", Offset: offset, Count: 100}).Result()
		if err != nil {
			return nil, r.wrap("list", err)
		}
		if len(zs) == 0 {
			break
		}
		offset += int64(len(zs))
		ids := make([]string, 0, len(zs))
		for _, z := range zs {
			// Ties on the score are ordered by id, descending: skip up to
			// and including the cursor's id.
			if id, _ := z.Member.(string); q.After == nil || int64(z.Score) < ms(q.After.CreateTime) || id < q.After.ID {
				ids = append(ids, id)
			}
		}
		matched, err := r.matching(ctx, ids, q.Match, q.Limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, matched...)
	}
	return out, nil
}

// headOf is what List matches on: the record without its request and
// entries, which are most of its size (300 workspaces: about 30 KB).
func headOf(rec *Record) *Record {
	h := *rec
	h.Request, h.Entries = nil, nil
	return &h
}

// matching returns, in order, up to limit of the records ids name that
// match: heads are read and matched first, whole records only for the
// matches, so a caller who sees few operations does not read them all.
func (r *Redis) matching(ctx context.Context, ids []string, match func(*Record) bool, limit int) ([]*Record, error) {
	heads, err := r.hgetEach(ctx, ids, "head")
	if err != nil {
		return nil, err
	}
	// Records written before heads existed are matched on themselves.
	var legacy []string
	for i, id := range ids {
		if heads[i] == nil {
			legacy = append(legacy, id)
		}
	}
	whole, err := r.hgetEach(ctx, legacy, "rec")
	if err != nil {
		return nil, err
	}
	var want []string
	for i, id := range ids {
		head := heads[i]
		if head == nil {
			head, whole = whole[0], whole[1:]
		}
		if head == nil {
			// Expired: forget it in the index too.
			r.rdb.ZRem(ctx, r.indexKey(), id)
			continue
		}
		var h Record
		if json.Unmarshal([]byte(*head), &h) != nil {
			continue
		}
		if match == nil || match(&h) {
			if want = append(want, id); len(want) == limit {
				break
			}
		}
	}
	data, err := r.hgetEach(ctx, want, "rec")
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, len(want))
	for _, d := range data {
		var rec Record
		if d != nil && json.Unmarshal([]byte(*d), &rec) == nil {
			out = append(out, &rec) // one that expired since its head was read is left out
		}
	}
	return out, nil
}

// hgetEach reads field of each operation in one round trip: nil where the
// operation or the field is missing. Any other error fails the whole read
// (Pipelined reports only the first error, which may be a redis.Nil).
func (r *Redis) hgetEach(ctx context.Context, ids []string, field string) ([]*string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, r.opKey(id), field)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.wrap("list", err)
	}
	out := make([]*string, len(ids))
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, r.wrap("list", err)
		default:
			out[i] = &v
		}
	}
	return out, nil
}

var cancelScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'end') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1', 'update', ARGV[1])
return 1`)

// Cancel implements Backend.
func (r *Redis) Cancel(ctx context.Context, id string) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := cancelScript.Run(ctx, r.rdb, []string{r.opKey(id)}, ms(r.opts.Now())).Int()
	switch {
	case err != nil:
		return r.wrap("cancel", err)
	case n < 0:
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	case n == 0:
		return ErrFinished
	}
	return nil
}

// CancelRequested implements Backend: one field, not the record.
func (r *Redis) CancelRequested(ctx context.Context, id string) (bool, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	v, err := r.rdb.HGet(ctx, r.opKey(id), "cancel").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, r.wrap("cancel requested", err)
	}
	return v == "1", nil
}

var deleteScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'end') == 0 then return 0 end
redis.call('DEL', unpack(KEYS))
return 1`)

// Delete implements Backend.
func (r *Redis) Delete(ctx context.Context, id string) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := deleteScript.Run(ctx, r.rdb, r.keys(id)).Int()
	switch {
	case err != nil:
		return r.wrap("delete", err)
	case n < 0:
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	case n == 0:
		return ErrRunning
	}
	r.rdb.ZRem(ctx, r.indexKey(), id)
	return nil
}

// recordScript stores a result unless the item has one, counts it, and
// ends the operation with its last item (then starts the retention clock).
var recordScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), ARGV[1])
else
  redis.call('HINCRBY', KEYS[1], 'done', 1)
end
redis.call('HINCRBY', KEYS[1], 'o:' .. ARGV[3], 1)
redis.call('HSET', KEYS[1], 'update', ARGV[5])
local left = tonumber(redis.call('HGET', KEYS[4], ARGV[6]) or '0')
if left > 0 then redis.call('HINCRBY', KEYS[4], ARGV[6], -1) end
local fin = tonumber(redis.call('HGET', KEYS[1], 'done')) + tonumber(redis.call('HGET', KEYS[1], 'failed'))
if fin >= tonumber(redis.call('HGET', KEYS[1], 'total')) and redis.call('HEXISTS', KEYS[1], 'end') == 0 then
  redis.call('HSET', KEYS[1], 'end', ARGV[5])
  redis.call('DEL', KEYS[4])
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
  return 2
end
return 1`)

// Record implements Backend.
func (r *Redis) Record(ctx context.Context, id string, res ItemResult) (stored, ended bool, err error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	failed := "0"
	if res.Failed {
		failed = "1"
	}
	n, err := recordScript.Run(ctx, r.rdb, r.keys(id), res.Index, res.Data, res.Outcome, failed,
		ms(r.opts.Now()), res.Entry, r.opts.Retention.Milliseconds()).Int()
	switch {
	case err != nil:
		return false, false, r.wrap("record", err)
	case n < 0:
		return false, false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return n >= 1, n == 2, nil
}

// Results implements Backend.
func (r *Redis) Results(ctx context.Context, id string, indices []int64) (map[int64][]byte, error) {
	if len(indices) == 0 {
		return map[int64][]byte{}, nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	fields := make([]string, len(indices))
	for i, x := range indices {
		fields[i] = strconv.FormatInt(x, 10)
	}
	vals, err := r.rdb.HMGet(ctx, r.opKey(id)+":results", fields...).Result()
	if err != nil {
		return nil, r.wrap("results", err)
	}
	out := make(map[int64][]byte, len(indices))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[indices[i]] = []byte(s)
		}
	}
	return out, nil
}

// FailedItems implements Backend.
func (r *Redis) FailedItems(ctx context.Context, id string, after int64, limit int) ([]int64, int64, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	k := r.opKey(id) + ":failed"
	var rng *redis.StringSliceCmd
	var card *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rng = p.ZRangeByScore(ctx, k, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(after, 10), Max: "+inf", Count: int64(limit)})
		card = p.ZCard(ctx, k)
		return nil
	})
	if err != nil {
		return nil, 0, r.wrap("failed items", err)
	}
	out := make([]int64, 0, len(rng.Val()))
	for _, s := range rng.Val() {
		n, _ := strconv.ParseInt(s, 10, 64)
		out = append(out, n)
	}
	return out, card.Val(), nil
}

// Running implements Backend.
func (r *Redis) Running(ctx context.Context, id string, entry int, items int64) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	k := r.opKey(id) + ":running"
	var err error
	if items <= 0 {
		err = r.rdb.HDel(ctx, k, strconv.Itoa(entry)).Err()
	} else {
		_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, k, strconv.Itoa(entry), items)
			p.PExpire(ctx, k, 2*r.opts.Retention)
			return nil
		})
	}
	return r.wrap("running", err)
}

// RunningEntries implements Backend.
func (r *Redis) RunningEntries(ctx context.Context, id string) (map[int]bool, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	keys, err := r.rdb.HKeys(ctx, r.opKey(id)+":running").Result()
	if err != nil {
		return nil, r.wrap("running", err)
	}
	out := make(map[int]bool, len(keys))
	for _, k := range keys {
		if n, err := strconv.Atoi(k); err == nil {
			out[n] = true
		}
	}
	return out, nil
}

var intentScript = redis.NewScript(`
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])`)

// SetIntent implements Backend.
func (r *Redis) SetIntent(ctx context.Context, id string, index int64, at time.Time) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.OpTimeout+r.opts.Replication.Budget())
	defer cancel()
	var v int64
	err := r.opts.Replication.Do(ctx, r.rdb, "write intent", func(c redis.Cmdable) (err error) {
		v, err = intentScript.Run(ctx, c, []string{r.opKey(id) + ":intents"}, index, at.UnixMicro(), (2 * r.opts.Retention).Milliseconds()).Int64()
		return err
	})
	if err != nil {
		return time.Time{}, r.wrap("intent", err)
	}
	return time.UnixMicro(v).UTC(), nil
}

// Intent implements Backend.
func (r *Redis) Intent(ctx context.Context, id string, index int64) (time.Time, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	v, err := r.rdb.HGet(ctx, r.opKey(id)+":intents", strconv.FormatInt(index, 10)).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, r.wrap("intent", err)
	}
	return time.UnixMicro(v).UTC(), nil
}

// Take implements Backend: XAUTOCLAIM of tasks idle past the claim timeout
// (a crashed or stalled consumer's), then XREADGROUP of new ones.
func (r *Redis) Take(ctx context.Context, consumer string, limit int) ([]Delivery, error) {
	out, err := r.claim(ctx, consumer, limit)
	if err != nil {
		return nil, err
	}
	if len(out) >= limit {
		return out, nil
	}
	block := r.opts.Block
	if len(out) > 0 {
		block = -1 // do not wait when there is work already
	}
	rctx, cancel := context.WithTimeout(ctx, r.opts.OpTimeout+max(block, 0))
	defer cancel()
	streams, err := r.rdb.XReadGroup(rctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
		Streams: []string{r.streamKey(), ">"}, Count: int64(limit - len(out)), Block: block}).Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// A Redis that lost its data (or a new one): recreate the group.
		err = r.ensureGroup(rctx)
		if err == nil {
			return out, nil
		}
	}
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, r.wrap("take", err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			if d, ok := delivery(m, 1); ok {
				out = append(out, d)
			} else {
				// Not a task (corrupt): drop it rather than loop on it.
				r.rdb.XAck(ctx, r.streamKey(), group, m.ID)
			}
		}
	}
	return out, nil
}

func delivery(m redis.XMessage, attempt int64) (Delivery, bool) {
	op, _ := m.Values["op"].(string)
	es, _ := m.Values["entry"].(string)
	e, err := strconv.Atoi(es)
	if op == "" || err != nil {
		return Delivery{}, false
	}
	return Delivery{Task: Task{Op: op, Entry: e}, ID: m.ID, Attempt: attempt}, true
}

func (r *Redis) claim(ctx context.Context, consumer string, limit int) ([]Delivery, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	r.mu.Lock()
	start := r.cursor
	r.mu.Unlock()
	msgs, next, err := r.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: r.streamKey(), Group: group,
		Consumer: consumer, MinIdle: r.opts.ClaimTimeout, Start: start, Count: int64(limit)}).Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, r.wrap("claim", r.ensureGroup(ctx))
		}
		return nil, r.wrap("claim", err)
	}
	r.mu.Lock()
	r.cursor = next
	r.mu.Unlock()
	if len(msgs) == 0 {
		return nil, nil
	}
	// The delivery count says how often an entry was tried.
	pend := make([]*redis.XPendingExtCmd, len(msgs))
	_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			pend[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: r.streamKey(), Group: group, Start: m.ID, End: m.ID, Count: 1})
		}
		return nil
	})
	counts := map[string]int64{}
	for _, c := range pend {
		if v, err := c.Result(); err == nil && len(v) == 1 {
			counts[v[0].ID] = v[0].RetryCount
		}
	}
	out := make([]Delivery, 0, len(msgs))
	for _, m := range msgs {
		d, ok := delivery(m, max(counts[m.ID], 2))
		if !ok {
			r.rdb.XAck(ctx, r.streamKey(), group, m.ID)
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// Heartbeat implements Backend: XCLAIM to the same consumer resets the
// entries' idle time, so XAUTOCLAIM elsewhere leaves them alone.
func (r *Redis) Heartbeat(ctx context.Context, consumer string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	err := r.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: r.streamKey(), Group: group, Consumer: consumer, MinIdle: 0, Messages: ids}).Err()
	return r.wrap("heartbeat", err)
}

// Ack implements Backend.
func (r *Redis) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, r.streamKey(), group, ids...)
		p.XDel(ctx, r.streamKey(), ids...)
		return nil
	})
	return r.wrap("ack", err)
}

// Release implements Backend: each task is queued anew and the held copy
// acknowledged, in one transaction.
func (r *Redis) Release(ctx context.Context, consumer string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	ranges := make([]*redis.XMessageSliceCmd, len(ids))
	if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			ranges[i] = p.XRange(ctx, r.streamKey(), id, id)
		}
		return nil
	}); err != nil {
		return r.wrap("release", err)
	}
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, rg := range ranges {
			for _, m := range rg.Val() {
				p.XAdd(ctx, &redis.XAddArgs{Stream: r.streamKey(), Values: []any{"op", m.Values["op"], "entry", m.Values["entry"]}})
				p.XAck(ctx, r.streamKey(), group, m.ID)
				p.XDel(ctx, r.streamKey(), m.ID)
			}
		}
		return nil
	})
	return r.wrap("release", err)
}
