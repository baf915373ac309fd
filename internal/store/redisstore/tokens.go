package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/store"
)

// Token layout, one hash slot:
//
//	<prefix>{tokens}:tok:<id>             JSON of store.Token (hash only, never the token)
//	<prefix>{tokens}:tok-by-hash:<sha256> id
//	<prefix>{tokens}:tok-index            ZSET of ids (lexicographic paging)
type tokens struct{ s *Store }

func (t tokens) recordKey(id string) string { return t.s.slotKey("tokens", "tok", id) }
func (t tokens) hashKey(h string) string    { return t.s.slotKey("tokens", "tok-by-hash", h) }
func (t tokens) indexKey() string           { return t.s.slotKey("tokens", "tok-index") }

func (t tokens) Create(ctx context.Context, tok *store.Token) error {
	data, err := json.Marshal(tok)
	if err != nil {
		return fmt.Errorf("encode token: %w", err)
	}
	opCtx, cancel := t.s.opCtx(ctx)
	defer cancel()
	res, err := createScript.Run(opCtx, t.s.rdb, []string{t.recordKey(tok.ID), t.indexKey(), t.hashKey(tok.Hash)}, data, tok.ID).Int()
	if err != nil {
		return t.s.wrap(opCtx, "create token", err)
	}
	if res != 0 {
		return fmt.Errorf("create token %s: %w", tok.ID, store.ErrAlreadyExists)
	}
	return nil
}

func (t tokens) Get(ctx context.Context, id string) (*store.Token, error) {
	opCtx, cancel := t.s.opCtx(ctx)
	defer cancel()
	data, err := t.s.rdb.Get(opCtx, t.recordKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, t.s.wrap(opCtx, "get token", err)
	}
	return decodeToken(data)
}

func (t tokens) GetByHash(ctx context.Context, hash string) (*store.Token, error) {
	opCtx, cancel := t.s.opCtx(ctx)
	id, err := t.s.rdb.Get(opCtx, t.hashKey(hash)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		err = t.s.wrap(opCtx, "get token by hash", err)
	}
	cancel()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get token by hash: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return t.Get(ctx, id)
}

func (t tokens) List(ctx context.Context, after string, limit int) ([]*store.Token, error) {
	if limit <= 0 {
		return nil, nil
	}
	opCtx, cancel := t.s.opCtx(ctx)
	defer cancel()
	minLex := "-"
	if after != "" {
		minLex = "(" + after
	}
	ids, err := t.s.rdb.ZRangeByLex(opCtx, t.indexKey(), &redis.ZRangeBy{Min: minLex, Max: "+", Count: int64(limit)}).Result()
	if err != nil {
		return nil, t.s.wrap(opCtx, "list tokens", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = t.recordKey(id)
	}
	vals, err := t.s.rdb.MGet(opCtx, keys...).Result()
	if err != nil {
		return nil, t.s.wrap(opCtx, "list tokens", err)
	}
	out := make([]*store.Token, 0, len(vals))
	for _, v := range vals {
		if s, ok := v.(string); ok {
			tok, err := decodeToken([]byte(s))
			if err != nil {
				return nil, err
			}
			out = append(out, tok)
		}
	}
	return out, nil
}

func (t tokens) Update(ctx context.Context, id string, fn func(*store.Token) error) (*store.Token, error) {
	key := t.recordKey(id)
	ws := &workspaces{s: t.s}
	var result *store.Token
	for range maxUpdateAttempts {
		err := ws.watch(ctx, func(tx *redis.Tx, opCtx context.Context) error {
			data, err := tx.Get(opCtx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("update token %s: %w", id, store.ErrNotFound)
			}
			if err != nil {
				return t.s.wrap(opCtx, "update token", err)
			}
			cur, err := decodeToken(data)
			if err != nil {
				return err
			}
			next := *cur
			if err := fn(&next); err != nil {
				return err
			}
			if next.ID != cur.ID {
				return fmt.Errorf("update token %s: %w", id, store.ErrImmutable)
			}
			if next.Hash != cur.Hash {
				if err := tx.Watch(opCtx, t.hashKey(next.Hash)).Err(); err != nil {
					return t.s.wrap(opCtx, "update token", err)
				}
				n, err := tx.Exists(opCtx, t.hashKey(next.Hash)).Result()
				if err != nil {
					return t.s.wrap(opCtx, "update token", err)
				}
				if n > 0 {
					return fmt.Errorf("update token %s: %w", id, store.ErrAlreadyExists)
				}
			}
			enc, err := json.Marshal(&next)
			if err != nil {
				return fmt.Errorf("encode token: %w", err)
			}
			if err := ws.exec(opCtx, tx, func(p redis.Pipeliner) {
				p.Set(opCtx, key, enc, 0)
				if next.Hash != cur.Hash {
					p.Del(opCtx, t.hashKey(cur.Hash))
					p.Set(opCtx, t.hashKey(next.Hash), id, 0)
				}
			}); err != nil {
				return err
			}
			result = &next
			return nil
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return result, err
	}
	return nil, fmt.Errorf("update token %s: %w", id, store.ErrConflict)
}

func decodeToken(data []byte) (*store.Token, error) {
	var t store.Token
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("decode token: %w: %w", store.ErrUnavailable, err)
	}
	return &t, nil
}
