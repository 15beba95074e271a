// Package notify carries cache invalidations between the customerkey nodes
// that share one store. A package that keeps something from the store in
// memory publishes a topic and a key after it commits a change, and
// subscribes to the same topic to drop what other nodes changed.
//
// Delivery is best effort and at most once: a notification can be lost (a
// node that is down, a listening connection that broke). That is why every
// cache keeps its time-to-live as well: the TTL bounds how long a missed
// notification leaves an entry stale, and a notification makes it seconds
// or less in the common case. When a Bus may have missed notifications (its
// connection to the other nodes came back), it calls every subscriber with
// All, which means "drop everything of this topic".
//
// A Bus never delivers a node's own notifications back to it: the
// publisher has already dropped its own entries, and doing so again would
// throw away what it may have cached right after the change.
//
// It is a level-1 package: it imports nothing from this module. Hub is the
// in-process implementation (one node, or several nodes in one test
// process); notify/pgnotify carries notifications between processes
// through PostgreSQL's LISTEN/NOTIFY.
package notify

import (
	"context"
	"sync"
)

// All is the key a Bus delivers when subscribers must drop everything of
// the topic, and the key a publisher sends when it changed too much to
// name. Keys are otherwise chosen by the topic's owner.
const All = ""

// Bus publishes and delivers invalidations.
type Bus interface {
	// Publish tells the other nodes that key of topic changed. Call it
	// after the change is committed. It does not return an error: a
	// notification that cannot be sent is logged by the Bus, and the
	// subscribers' TTLs bound what it leaves stale. It waits for the
	// notification to be handed over (a few milliseconds with
	// PostgreSQL), so that a caller acknowledged after Publish returns
	// finds the change on every connected node.
	Publish(ctx context.Context, topic, key string)
	// Subscribe registers fn for the topic's notifications from other
	// nodes. fn runs on the Bus's delivery goroutine: it must be quick and
	// must not call Publish. Subscribe while wiring, before serving.
	Subscribe(topic string, fn func(key string))
}

// Subscribers is the registry of handlers by topic that Bus
// implementations share. The zero value is ready to use.
type Subscribers struct {
	mu sync.RWMutex
	m  map[string][]func(string)
}

// Add registers fn for topic.
func (s *Subscribers) Add(topic string, fn func(string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]func(string){}
	}
	s.m[topic] = append(s.m[topic], fn)
}

// Deliver calls every handler of topic with key.
func (s *Subscribers) Deliver(topic, key string) {
	s.mu.RLock()
	fns := s.m[topic]
	s.mu.RUnlock()
	for _, fn := range fns {
		fn(key)
	}
}

// Flush calls every handler of every topic with All.
func (s *Subscribers) Flush() {
	s.mu.RLock()
	var fns []func(string)
	for _, l := range s.m {
		fns = append(fns, l...)
	}
	s.mu.RUnlock()
	for _, fn := range fns {
		fn(All)
	}
}

// Hub connects the nodes of one process. Each Node it hands out is the Bus
// of one node: a notification published on a node is delivered, before
// Publish returns, to the handlers of every other node of the Hub. A
// single-node deployment (the embedded store) uses a Hub with one node,
// whose Publish has no one to tell.
type Hub struct {
	mu    sync.RWMutex
	nodes []*Node
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{} }

// Node adds a node to the Hub and returns its Bus.
func (h *Hub) Node() *Node {
	n := &Node{hub: h}
	h.mu.Lock()
	h.nodes = append(h.nodes, n)
	h.mu.Unlock()
	return n
}

// Node is the Bus of one node of a Hub.
type Node struct {
	hub  *Hub
	subs Subscribers
}

var _ Bus = (*Node)(nil)

// Publish delivers to every other node of the Hub.
func (n *Node) Publish(_ context.Context, topic, key string) {
	n.hub.mu.RLock()
	nodes := n.hub.nodes
	n.hub.mu.RUnlock()
	for _, o := range nodes {
		if o != n {
			o.subs.Deliver(topic, key)
		}
	}
}

// Subscribe registers fn for notifications from the other nodes.
func (n *Node) Subscribe(topic string, fn func(string)) { n.subs.Add(topic, fn) }

// Nop is a Bus for a Service that is alone on its store (unit tests): it
// tells no one and hears nothing.
type Nop struct{}

var _ Bus = Nop{}

// Publish does nothing.
func (Nop) Publish(context.Context, string, string) {}

// Subscribe does nothing.
func (Nop) Subscribe(string, func(string)) {}
