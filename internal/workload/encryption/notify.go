package encryption

import (
	"context"
	"strings"

	"github.com/customerkey/customerkey/internal/notify"
)

// topicScope is what this package publishes after a committed change to a
// scope; the key is "<tenant id>/<scope name>".
const topicScope = "encryption/scope"

// invalidate drops a scope changed through this process, here and on the
// other nodes.
func (s *Service) invalidate(ctx context.Context, k cacheKey) {
	s.cache.invalidate(k)
	s.bus.Publish(ctx, topicScope, k.tid+"/"+k.name)
}

// dropNotified drops what another node reports changed.
func (s *Service) dropNotified(key string) {
	tid, name, ok := strings.Cut(key, "/")
	if key == notify.All || !ok {
		s.cache.clear()
		return
	}
	s.cache.invalidate(cacheKey{tid, name})
}
