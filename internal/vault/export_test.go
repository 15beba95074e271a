package vault

// DataPrefix exposes where a vault's contents live, so that tests can plant
// contents before step 3 adds keys.
var DataPrefix = dataPrefix
