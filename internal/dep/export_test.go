package dep

// CachedKeys is how many policy key versions the cache holds.
func (s *Service) CachedKeys() int { return s.cache.len() }
