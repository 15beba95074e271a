package envelope_test

import (
	"fmt"

	"github.com/customerkey/customerkey/internal/envelope"
)

// A scope key sealed under a policy key names the policy key, so that the
// reader knows which key to fetch before opening it; the context bytes tie
// it to its tenant and scope.
func Example() {
	policyKey, err := envelope.NewKey()
	if err != nil {
		panic(err)
	}
	defer policyKey.Wipe()
	aad := []byte("tenant:contoso|mailbox:1")
	blob, err := envelope.Seal(policyKey, "policy-1", 2, []byte("scope key bytes"), aad)
	if err != nil {
		panic(err)
	}

	id, version, _ := envelope.Header(blob)
	fmt.Println(id, version)
	plain, err := envelope.Open(policyKey, blob, aad)
	fmt.Println(string(plain), err)
	_, err = envelope.Open(policyKey, blob, []byte("tenant:fabrikam|mailbox:1"))
	fmt.Println(err)
	// Output:
	// policy-1 2
	// scope key bytes <nil>
	// the sealed data cannot be opened: it was sealed under another key or with other context data, or it was changed
}
