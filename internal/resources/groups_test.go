package resources_test

import (
	"context"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resources"
)

func TestCheckGroupName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"rg", true},
		{"Contoso-Keys_01", true},
		{"keys.(prod)", true},
		{"Résumé", true},
		{strings.Repeat("a", 90), true},
		{"", false},
		{strings.Repeat("a", 91), false},
		{"ends.", false},
		{"has space", false},
		{"slash/name", false},
		{"star*", false},
		{"percent%", false},
	}
	for _, tc := range tests {
		err := resources.CheckGroupName(tc.name)
		if tc.ok {
			wantErr(t, "CheckGroupName("+tc.name+")", err, none, "")
		} else {
			wantErr(t, "CheckGroupName("+tc.name+")", err, errkind.Invalid, resources.CodeInvalidResourceGroup)
		}
	}
}

func TestLookupRegion(t *testing.T) {
	for in, want := range map[string]string{"westeurope": "westeurope", "West Europe": "westeurope", "EASTUS2": "eastus2",
		" swedencentral ": "swedencentral", "South Africa North": "southafricanorth"} {
		if r, ok := resources.LookupRegion(in); !ok || r.Name != want {
			t.Errorf("LookupRegion(%q) = %+v, %v; want %s", in, r, ok, want)
		}
	}
	for _, in := range []string{"mars", "", "west-europe", "global"} {
		if r, ok := resources.LookupRegion(in); ok {
			t.Errorf("LookupRegion(%q) = %+v, want not found", in, r)
		}
	}
}

func TestResourceGroups(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	tests := []struct {
		name     string
		group    string
		spec     resources.GroupSpec
		kind     errkind.Kind
		code     string
		created  bool
		wantName string
	}{
		{"create", "Contoso-Keys", resources.GroupSpec{Location: "West Europe", Tags: map[string]string{"env": "prod"}}, none, "", true, "Contoso-Keys"},
		{"update keeps the first casing", "contoso-KEYS", resources.GroupSpec{Location: "WESTEUROPE"}, none, "", false, "Contoso-Keys"},
		{"location cannot change", "CONTOSO-keys", resources.GroupSpec{Location: "northeurope"}, errkind.Conflict, resources.CodeInvalidResourceGroupLocation, false, ""},
		{"second group", "keys2", resources.GroupSpec{Location: "northeurope"}, none, "", true, "keys2"},
		{"bad name", "bad.", resources.GroupSpec{Location: "westeurope"}, errkind.Invalid, resources.CodeInvalidResourceGroup, false, ""},
		{"unknown location", "rg3", resources.GroupSpec{Location: "mars"}, errkind.Invalid, resources.CodeLocationNotAvailable, false, ""},
		{"missing location", "rg3", resources.GroupSpec{}, errkind.Invalid, resources.CodeLocationRequired, false, ""},
		{"bad tag", "rg3", resources.GroupSpec{Location: "westeurope", Tags: map[string]string{"a/b": "c"}}, errkind.Invalid, resources.CodeInvalidTag, false, ""},
		{"unknown subscription", "rg3", resources.GroupSpec{Location: "westeurope"}, errkind.NotFound, resources.CodeSubscriptionNotFound, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := s.ID
			if tc.code == resources.CodeSubscriptionNotFound {
				sub = "3f1d2c4b-0000-4000-8000-000000000001"
			}
			g, created, err := e.svc.CreateOrUpdateGroup(ctx, e.ga(), sub, tc.group, tc.spec)
			wantErr(t, "CreateOrUpdateGroup()", err, tc.kind, tc.code)
			if tc.kind != none {
				return
			}
			if created != tc.created || g.Name != tc.wantName {
				t.Errorf("CreateOrUpdateGroup() = %q created=%v, want %q created=%v", g.Name, created, tc.wantName, tc.created)
			}
			if want := "/subscriptions/" + s.ID + "/resourceGroups/" + tc.wantName; g.ResourceID().String() != want {
				t.Errorf("ResourceID() = %s, want %s", g.ResourceID(), want)
			}
		})
	}
	g, err := e.svc.Group(ctx, s.ID, "CONTOSO-KEYS")
	if err != nil || g.Name != "Contoso-Keys" || g.Location != "westeurope" || len(g.Tags) != 0 {
		t.Errorf("Group() = %+v, %v; want Contoso-Keys in westeurope, tags replaced by the update", g, err)
	}
	_, err = e.svc.Group(ctx, s.ID, "nope")
	wantErr(t, "Group(nope)", err, errkind.NotFound, resources.CodeResourceGroupNotFound)
	list, err := e.svc.Groups(ctx, s.ID)
	if err != nil || len(list) != 2 || list[0].Name != "Contoso-Keys" || list[1].Name != "keys2" {
		t.Errorf("Groups() = %+v, %v", list, err)
	}
	if evs := e.events(e.contoso.Tenant.ID, "resources/resourceGroups/write"); len(evs) != 3 {
		t.Errorf("write audit records = %d, want 3", len(evs))
	}

	// Another tenant's caller stops at the tenant boundary.
	_, _, err = e.svc.CreateOrUpdateGroup(ctx, userCaller(e.fabrikam.Admin), s.ID, "intruder", resources.GroupSpec{Location: "westeurope"})
	wantErr(t, "CreateOrUpdateGroup() from another tenant", err, errkind.PermissionDenied, resources.CodeAuthorizationFailed)
	// The operator may.
	if _, _, err := e.svc.CreateOrUpdateGroup(ctx, e.operator(), s.ID, "ops", resources.GroupSpec{Location: "westeurope"}); err != nil {
		t.Errorf("CreateOrUpdateGroup() by the operator: %v", err)
	}
}

func TestDeleteGroup(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	for _, n := range []string{"Empty", "Full"} {
		if _, _, err := e.svc.CreateOrUpdateGroup(ctx, e.ga(), s.ID, n, resources.GroupSpec{Location: "uksouth"}); err != nil {
			t.Fatal(err)
		}
	}
	e.contents.set(s.ID, "Full", 2)
	tests := []struct {
		name  string
		group string
		force bool
		kind  errkind.Kind
		code  string
	}{
		{"empty", "empty", false, none, ""},
		{"again", "Empty", false, errkind.NotFound, resources.CodeResourceGroupNotFound},
		{"not empty", "FULL", false, errkind.Conflict, resources.CodeResourceGroupDeletionBlocked},
		{"not empty, forced", "full", true, none, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.svc.DeleteGroup(ctx, e.ga(), s.ID, tc.group, tc.force)
			wantErr(t, "DeleteGroup()", err, tc.kind, tc.code)
			if tc.code == resources.CodeResourceGroupDeletionBlocked && !strings.Contains(err.Error(), "holds 2 resources") {
				t.Errorf("DeleteGroup() message = %q, want it to say how many resources", err)
			}
		})
	}
	if len(e.contents.deleted) != 1 || e.contents.deleted[0] != s.ID+"/full by "+e.contoso.Admin.ID {
		t.Errorf("DeleteResourcesIn calls = %v, want one for Full by the GA", e.contents.deleted)
	}
	if list, _ := e.svc.Groups(ctx, s.ID); len(list) != 0 {
		t.Errorf("Groups() after deleting both = %+v", list)
	}
	evs := e.events(e.contoso.Tenant.ID, "resources/resourceGroups/delete")
	if len(evs) != 2 || !strings.Contains(evs[1].Reason, "forced: 2 resources") {
		t.Errorf("delete audit records = %+v", evs)
	}
}
