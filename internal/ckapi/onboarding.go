package ckapi

import (
	"context"
	"net/http"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/onboarding"
)

// Onboarding is the onboarding service; package onboarding implements it.
type Onboarding interface {
	Submit(ctx context.Context, c onboarding.Caller, spec onboarding.Spec) (onboarding.Request, error)
	Get(ctx context.Context, c onboarding.Caller, org, id string) (onboarding.Request, error)
	List(ctx context.Context, c onboarding.Caller, org string) ([]onboarding.Request, error)
	EnabledScenarios(ctx context.Context, tenantID string) ([]onboarding.Scenario, error)
	SubmitLegacy(ctx context.Context, c onboarding.Caller, spec onboarding.LegacySpec) (onboarding.LegacyRequest, error)
	ApproveLegacy(ctx context.Context, c onboarding.Caller, id string) (onboarding.LegacyRequest, error)
	LegacyRequests(ctx context.Context, c onboarding.Caller, org string) ([]onboarding.LegacyRequest, error)
}

func onboardingCaller(p identity.Principal) onboarding.Caller {
	t := "servicePrincipal"
	if p.Type == identity.UserPrincipal {
		t = "user"
	}
	return onboarding.Caller{TenantID: p.TenantID, ObjectID: p.ObjectID, Type: t, Name: p.Actor().Name}
}

func (a *API) registerOnboarding(route func(string, int64, httpx.HandlerFunc)) {
	const small = 64 << 10
	route("POST /customerkey/v1/onboarding/requests", small, a.submitOnboarding)
	route("GET /customerkey/v1/onboarding/requests", small, a.listOnboarding)
	route("GET /customerkey/v1/onboarding/requests/{id}", small, a.getOnboarding)
	route("POST /customerkey/v1/onboarding/legacy-requests", small, a.submitLegacy)
	route("GET /customerkey/v1/onboarding/legacy-requests", small, a.listLegacy)
	route("POST /customerkey/v1/onboarding/legacy-requests/{id}/approve", small, a.approveLegacy)
}

// submitOnboarding takes the seed's New-CustomerKeyOnboardingRequest
// parameters, by their names.
func (a *API) submitOnboarding(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	var in struct {
		Organization, Scenario, OnboardingMode              string
		Subscription1, VaultName1, KeyName1, KeyIdentifier1 string
		Subscription2, VaultName2, KeyName2, KeyIdentifier2 string
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	spec := onboarding.Spec{Organization: in.Organization, Scenario: in.Scenario, Mode: in.OnboardingMode,
		Subscription1: in.Subscription1, VaultName1: in.VaultName1, KeyName1: in.KeyName1, KeyIdentifier1: in.KeyIdentifier1,
		Subscription2: in.Subscription2, VaultName2: in.VaultName2, KeyName2: in.KeyName2, KeyIdentifier2: in.KeyIdentifier2}
	req, err := a.o.Onboarding.Submit(r.Context(), onboardingCaller(p), spec)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusCreated, req)
}

func organization(r *http.Request) (string, error) {
	org := r.URL.Query().Get("organizationId")
	if org == "" {
		return "", errkind.New(errkind.Invalid, "organizationId is required: the tenant whose requests to read").WithCode("BadRequest")
	}
	return org, nil
}

func (a *API) listOnboarding(w http.ResponseWriter, r *http.Request) error {
	return listByOrganization(a, w, r, a.o.Onboarding.List)
}

// listByOrganization answers a list of one organization's records.
func listByOrganization[T any](a *API, w http.ResponseWriter, r *http.Request,
	list func(context.Context, onboarding.Caller, string) ([]T, error)) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	org, err := organization(r)
	if err != nil {
		return err
	}
	items, err := list(r.Context(), onboardingCaller(p), org)
	if err != nil {
		return err
	}
	if items == nil {
		items = []T{}
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": items})
}

func (a *API) getOnboarding(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	org, err := organization(r)
	if err != nil {
		return err
	}
	req, err := a.o.Onboarding.Get(r.Context(), onboardingCaller(p), org, r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, req)
}

func (a *API) submitLegacy(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	var in onboarding.LegacySpec
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	req, err := a.o.Onboarding.SubmitLegacy(r.Context(), onboardingCaller(p), in)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusCreated, req)
}

func (a *API) listLegacy(w http.ResponseWriter, r *http.Request) error {
	return listByOrganization(a, w, r, a.o.Onboarding.LegacyRequests)
}

func (a *API) approveLegacy(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	req, err := a.o.Onboarding.ApproveLegacy(r.Context(), onboardingCaller(p), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, req)
}
