package arm

import (
	"context"
	"net/http"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
)

// Authorizer decides management actions; rbac implements it.
type Authorizer interface {
	Check(ctx context.Context, p rbac.Principal, action string, scope resourceid.ID) error
}

// rbacPrincipal is the token's subject as rbac sees it.
func rbacPrincipal(p identity.Principal) rbac.Principal {
	t := rbac.PrincipalServicePrincipal
	if p.Type == identity.UserPrincipal {
		t = rbac.PrincipalUser
	}
	name := p.AppID
	if p.Type == identity.UserPrincipal {
		name = p.Name
	}
	return rbac.Principal{TenantID: p.TenantID, ObjectID: p.ObjectID, Type: t, Name: name}
}

func caller(p identity.Principal) directory.Caller { return p.Caller() }

// subscriptionFor loads a subscription the caller may see: one of its own
// tenant. Another tenant's subscription is reported as missing, as ARM
// does, so that ids do not leak across tenants.
func (a *API) subscriptionFor(ctx context.Context, p identity.Principal, id string) error {
	tid, _, err := a.o.Subscriptions.Subscription(ctx, id)
	if err != nil || tid != p.TenantID {
		return errkind.Errorf(errkind.NotFound, "The subscription '%s' could not be found.", id).WithCode("SubscriptionNotFound")
	}
	return nil
}

// authorize checks that the subscription is the caller's and that rbac
// allows action at scope.
func (a *API) authorize(ctx context.Context, p identity.Principal, action string, scope resourceid.ID) error {
	if err := a.subscriptionFor(ctx, p, scope.SubscriptionID); err != nil {
		return err
	}
	return a.o.RBAC.Check(ctx, rbacPrincipal(p), action, scope)
}

// decode reads a request body; ARM clients may send fields of newer API
// versions, which are ignored.
func decode(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Body == http.NoBody {
		return errkind.New(errkind.Invalid, "The request content was invalid and could not be deserialized: the body is empty.").WithCode("InvalidRequestContent")
	}
	if err := httpx.DecodeJSONLenient(r, v); err != nil {
		if errkind.Is(err, errkind.TooLarge) {
			return err
		}
		return errkind.Wrap(errkind.Invalid, "The request content was invalid and could not be deserialized: "+errkind.Public(err), err).WithCode("InvalidRequestContent")
	}
	return nil
}
