package vault

import (
	"context"
	"strings"

	"github.com/customerkey/customerkey/internal/notify"
)

// Topics this package publishes after a committed change, so that the
// other nodes on the store drop what they cached of it at once rather
// than after KeyCacheTTL (which stays the bound for a lost notification).
const (
	topicKey   = "vault/key"   // key: "<vault uid>/<lowercased key name>"
	topicVault = "vault/vault" // key: a lowercased vault name
	topicUID   = "vault/uid"   // key: the uid of a purged vault
)

// subscribe makes the cache drop what other nodes report changed. A key
// changed elsewhere loses its parsed versions too (they are wiped): the
// next operation parses them again from the store, which is rare enough
// not to matter and keeps a purged key from lingering in memory here.
func (s *Service) subscribe() {
	s.bus.Subscribe(topicKey, func(k string) {
		uid, name, ok := strings.Cut(k, "/")
		if k == notify.All || !ok {
			s.keys.flush()
			return
		}
		s.keys.drop(nameKey{uid: uid, name: name}, true, true)
	})
	s.bus.Subscribe(topicVault, func(name string) {
		if name == notify.All {
			s.keys.flush()
			return
		}
		s.keys.forgetVault(name)
	})
	s.bus.Subscribe(topicUID, func(uid string) {
		if uid == notify.All {
			s.keys.flush()
			return
		}
		s.keys.dropUID(uid)
	})
}

// forgetKey drops a key changed through this process from the cache, here
// and on the other nodes; it returns the generation for a fill that
// follows the change.
func (s *Service) forgetKey(ctx context.Context, k nameKey, purge bool) uint64 {
	gen := s.keys.forgetKey(k, purge)
	s.bus.Publish(ctx, topicKey, k.uid+"/"+k.name)
	return gen
}

// forgetVault drops a vault changed through this process, here and on the
// other nodes; "" forgets every vault.
func (s *Service) forgetVault(ctx context.Context, name string) {
	s.keys.forgetVault(name)
	s.bus.Publish(ctx, topicVault, fold(name))
}

// dropUID evicts the keys of a purged vault, here and on the other nodes.
func (s *Service) dropUID(ctx context.Context, uid string) {
	s.keys.dropUID(uid)
	s.bus.Publish(ctx, topicUID, uid)
}
