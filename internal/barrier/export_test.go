package barrier

// DataKeys returns copies of the current data keys, for tests that search
// the data file for them.
func DataKeys(b *Barrier) [][]byte {
	kr := b.kr.Load()
	if kr == nil {
		return nil
	}
	out := make([][]byte, len(kr.keys))
	for i, k := range kr.keys {
		out[i] = append([]byte(nil), k.Reveal()...)
	}
	return out
}
