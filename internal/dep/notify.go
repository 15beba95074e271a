package dep

import (
	"context"
	"strings"

	"github.com/customerkey/customerkey/internal/notify"
)

// topicPolicy is what dep publishes after a policy's keys changed (a new
// key version by Refresh, Replace or a SharePoint roll, or a purge); the
// key is "<tenant id>/<policy id>".
const topicPolicy = "dep/policy"

// subscribe makes the cache drop the policy keys other nodes report
// changed: a purged policy's keys must not outlive the purge anywhere, and
// after a refresh or replacement every node unwraps the policy key from
// the root keys again, so a revoked root key shows at once everywhere.
func (s *Service) subscribe() {
	s.bus.Subscribe(topicPolicy, func(k string) {
		tid, pid, ok := strings.Cut(k, "/")
		if k == notify.All || !ok {
			s.cache.clear()
			return
		}
		s.cache.evictPolicy(tid, pid)
	})
}

// policyChanged drops the cached keys of a policy whose keys changed, here
// and on the other nodes.
func (s *Service) policyChanged(ctx context.Context, tenantID, policyID string) {
	s.cache.evictPolicy(tenantID, policyID)
	s.bus.Publish(ctx, topicPolicy, tenantID+"/"+policyID)
}
