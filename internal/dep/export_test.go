package dep

// CachedKeys is how many policy key versions the cache holds.
func (s *Service) CachedKeys() int { return s.cache.len() }

// AKAAD is the additional data that binds version v of policy id's key to
// its availability key copy.
func AKAAD(tid, id string, v int) []byte { return akAAD(tid, id, v) }
