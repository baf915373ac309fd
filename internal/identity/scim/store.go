package scim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// errNotFound: no resource with that id.
var errNotFound = errors.New("scim: not found")

// errTaken: the unique name (userName, group displayName) belongs to
// another resource.
var errTaken = errors.New("scim: name taken")

// Store keeps SCIM resources as JSON documents by kind ("User", "Group")
// and id, with a unique, case-insensitive name per kind. Update is atomic
// per resource, across replicas on Redis.
type Store interface {
	Get(ctx context.Context, kind, id string) ([]byte, error)
	// List returns every resource of a kind, ordered by id.
	List(ctx context.Context, kind string) ([][]byte, error)
	// Create stores a new resource under its name; errTaken when the name
	// is another resource's.
	Create(ctx context.Context, kind, id, name string, doc []byte) error
	// Update replaces a resource with fn(current) atomically; fn returns
	// the new document and its name (errTaken when another resource holds
	// that name).
	Update(ctx context.Context, kind, id string, fn func(cur []byte) (doc []byte, name string, err error)) error
	Delete(ctx context.Context, kind, id string) error
}

func nameKey(name string) string { return strings.ToLower(name) }

// Memory is the embedded backend's Store.
type Memory struct {
	mu    sync.Mutex
	docs  map[string]map[string][]byte // kind → id → doc
	names map[string]map[string]string // kind → name key → id
	owned map[string]map[string]string // kind → id → name key
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{docs: map[string]map[string][]byte{}, names: map[string]map[string]string{}, owned: map[string]map[string]string{}}
}

func (m *Memory) kind(k string) {
	if m.docs[k] == nil {
		m.docs[k], m.names[k], m.owned[k] = map[string][]byte{}, map[string]string{}, map[string]string{}
	}
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, kind, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[kind][id]
	if !ok {
		return nil, errNotFound
	}
	return d, nil
}

// List implements Store.
func (m *Memory) List(_ context.Context, kind string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.docs[kind]))
	for id := range m.docs[kind] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = m.docs[kind][id]
	}
	return out, nil
}

// Create implements Store.
func (m *Memory) Create(_ context.Context, kind, id, name string, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kind(kind)
	if _, ok := m.names[kind][nameKey(name)]; ok {
		return errTaken
	}
	m.names[kind][nameKey(name)], m.owned[kind][id], m.docs[kind][id] = id, nameKey(name), doc
	return nil
}

// Update implements Store.
func (m *Memory) Update(_ context.Context, kind, id string, fn func([]byte) ([]byte, string, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.docs[kind][id]
	if !ok {
		return errNotFound
	}
	doc, name, err := fn(cur)
	if err != nil {
		return err
	}
	if holder, ok := m.names[kind][nameKey(name)]; ok && holder != id {
		return errTaken
	}
	delete(m.names[kind], m.owned[kind][id])
	m.names[kind][nameKey(name)], m.owned[kind][id], m.docs[kind][id] = id, nameKey(name), doc
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.docs[kind][id]; !ok {
		return errNotFound
	}
	delete(m.names[kind], m.owned[kind][id])
	delete(m.owned[kind], id)
	delete(m.docs[kind], id)
	return nil
}

// Redis is the Redis backend's Store: per kind, a hash of documents
// (<prefix>{scim}:<kind>), a hash of name key → id (…:<kind>:names) and of
// id → name key (…:<kind>:owned), changed in one transaction.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedis returns a Store on rdb under prefix.
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix + "{scim}:"}
}

func (r *Redis) keys(kind string) (docs, names, owned string) {
	k := r.prefix + kind
	return k, k + ":names", k + ":owned"
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, kind, id string) ([]byte, error) {
	docs, _, _ := r.keys(kind)
	b, err := r.rdb.HGet(ctx, docs, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("scim store: %w", err)
	}
	return b, nil
}

// List implements Store.
func (r *Redis) List(ctx context.Context, kind string) ([][]byte, error) {
	docs, _, _ := r.keys(kind)
	all, err := r.rdb.HGetAll(ctx, docs).Result()
	if err != nil {
		return nil, fmt.Errorf("scim store: %w", err)
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = []byte(all[id])
	}
	return out, nil
}

// Create implements Store.
func (r *Redis) Create(ctx context.Context, kind, id, name string, doc []byte) error {
	docs, names, owned := r.keys(kind)
	return r.txn(ctx, []string{names}, func(tx *redis.Tx) error {
		if err := tx.HGet(ctx, names, nameKey(name)).Err(); err == nil {
			return errTaken
		} else if !errors.Is(err, redis.Nil) {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, names, nameKey(name), id)
			p.HSet(ctx, owned, id, nameKey(name))
			p.HSet(ctx, docs, id, doc)
			return nil
		})
		return err
	})
}

// Update implements Store.
func (r *Redis) Update(ctx context.Context, kind, id string, fn func([]byte) ([]byte, string, error)) error {
	docs, names, owned := r.keys(kind)
	return r.txn(ctx, []string{docs, names}, func(tx *redis.Tx) error {
		cur, err := tx.HGet(ctx, docs, id).Bytes()
		if errors.Is(err, redis.Nil) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		doc, name, err := fn(cur)
		if err != nil {
			return err
		}
		holder, err := tx.HGet(ctx, names, nameKey(name)).Result()
		if err == nil && holder != id {
			return errTaken
		} else if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		old, err := tx.HGet(ctx, owned, id).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if old != "" && old != nameKey(name) {
				p.HDel(ctx, names, old)
			}
			p.HSet(ctx, names, nameKey(name), id)
			p.HSet(ctx, owned, id, nameKey(name))
			p.HSet(ctx, docs, id, doc)
			return nil
		})
		return err
	})
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, kind, id string) error {
	docs, names, owned := r.keys(kind)
	return r.txn(ctx, []string{docs, names}, func(tx *redis.Tx) error {
		n, err := tx.HExists(ctx, docs, id).Result()
		if err != nil {
			return err
		}
		if !n {
			return errNotFound
		}
		old, err := tx.HGet(ctx, owned, id).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if old != "" {
				p.HDel(ctx, names, old)
			}
			p.HDel(ctx, owned, id)
			p.HDel(ctx, docs, id)
			return nil
		})
		return err
	})
}

// txn runs fn under WATCH of keys, retrying when another client changed
// them first.
func (r *Redis) txn(ctx context.Context, keys []string, fn func(*redis.Tx) error) error {
	for range 20 {
		err := r.rdb.Watch(ctx, fn, keys...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil && !errors.Is(err, errNotFound) && !errors.Is(err, errTaken) && !isFnErr(err) {
			return fmt.Errorf("scim store: %w", err)
		}
		return err
	}
	return errors.New("scim store: too much contention")
}
