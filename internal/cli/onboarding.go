package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// validation is one rule's outcome, with the seed's field names.
type validation struct {
	RuleName      string `json:"RuleName"`
	Scope         string `json:"Scope"`
	ExpectedValue string `json:"ExpectedValue"`
	ActualValue   string `json:"ActualValue"`
	Details       string `json:"Details"`
}

// onboardingRequest has exactly the fields the seed's cmdlet returns.
type onboardingRequest struct {
	ID                string       `json:"ID"`
	CreatedDate       time.Time    `json:"CreatedDate"`
	Organization      string       `json:"Organization"`
	Scenario          string       `json:"Scenario"`
	Subscription1     string       `json:"Subscription1"`
	VaultName1        string       `json:"VaultName1"`
	KeyName1          string       `json:"KeyName1"`
	Subscription2     string       `json:"Subscription2"`
	VaultName2        string       `json:"VaultName2"`
	KeyName2          string       `json:"KeyName2"`
	KeyIdentifier1    string       `json:"KeyIdentifier1,omitempty"`
	KeyIdentifier2    string       `json:"KeyIdentifier2,omitempty"`
	OnboardingMode    string       `json:"OnboardingMode"`
	ValidationResult  string       `json:"ValidationResult"`
	EnablementResult  string       `json:"EnablementResult"`
	PassedValidations []validation `json:"PassedValidations"`
	FailedValidations []validation `json:"FailedValidations"`
	Messages          []string     `json:"Messages,omitempty"`
}

func printValidations(pr printer, vs []validation) error {
	rows := make([][]string, 0, len(vs))
	for _, v := range vs {
		rows = append(rows, []string{v.RuleName, v.Scope, v.ExpectedValue, v.ActualValue, v.Details})
	}
	if vs == nil {
		vs = []validation{}
	}
	return pr.print(vs, []string{"RuleName", "Scope", "ExpectedValue", "ActualValue", "Details"}, rows)
}

func printRequest(cmd *cobra.Command, pr printer, r onboardingRequest) error {
	if err := pr.printFields(r, [][2]string{{"ID", r.ID}, {"CreatedDate", r.CreatedDate.Format(time.RFC3339)},
		{"Organization", r.Organization}, {"Scenario", r.Scenario}, {"OnboardingMode", r.OnboardingMode},
		{"ValidationResult", r.ValidationResult}, {"EnablementResult", r.EnablementResult}}); err != nil || pr.format == "json" {
		return err
	}
	for _, m := range r.Messages {
		fmt.Fprintln(cmd.OutOrStdout(), m)
	}
	if len(r.FailedValidations) > 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "\nFailedValidations:")
		return printValidations(pr, r.FailedValidations)
	}
	return nil
}

func onboardingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "onboarding", Short: "The Customer Key onboarding service: Validate, Prepare, Enable"}
	var in struct{ org, scenario, mode, sub1, vault1, key1, sub2, vault2, key2, kid1, kid2 string }
	newCmd := &cobra.Command{
		Use:   "new --organization T --scenario MDEP|EXO --subscription1 S1 --vault-name1 V1 --key-name1 K1 --subscription2 S2 --vault-name2 V2 --key-name2 K2 --onboarding-mode Validate|Prepare|Enable",
		Short: "Create an onboarding request (New-CustomerKeyOnboardingRequest)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			body := map[string]string{"Organization": in.org, "Scenario": in.scenario, "OnboardingMode": in.mode,
				"Subscription1": in.sub1, "VaultName1": in.vault1, "KeyName1": in.key1, "KeyIdentifier1": in.kid1,
				"Subscription2": in.sub2, "VaultName2": in.vault2, "KeyName2": in.key2, "KeyIdentifier2": in.kid2}
			var r onboardingRequest
			if err := s.call(cmd.Context(), armScope, "POST", "/customerkey/v1/onboarding/requests", body, &r); err != nil {
				return err
			}
			return printRequest(cmd, pr, r)
		},
	}
	f := newCmd.Flags()
	f.StringVar(&in.org, "organization", "", "tenant id (required)")
	f.StringVar(&in.scenario, "scenario", "", "MDEP (multiple workloads) or EXO (Exchange) (required)")
	f.StringVar(&in.mode, "onboarding-mode", "Validate", "Validate, Prepare or Enable")
	f.StringVar(&in.sub1, "subscription1", "", "first subscription id")
	f.StringVar(&in.vault1, "vault-name1", "", "first key vault")
	f.StringVar(&in.key1, "key-name1", "", "key in the first vault")
	f.StringVar(&in.kid1, "key-identifier1", "", "the first key's URI, instead of --vault-name1 and --key-name1")
	f.StringVar(&in.sub2, "subscription2", "", "second subscription id")
	f.StringVar(&in.vault2, "vault-name2", "", "second key vault")
	f.StringVar(&in.key2, "key-name2", "", "key in the second vault")
	f.StringVar(&in.kid2, "key-identifier2", "", "the second key's URI, instead of --vault-name2 and --key-name2")
	_ = newCmd.MarkFlagRequired("organization")
	_ = newCmd.MarkFlagRequired("scenario")

	var org, id string
	var failed, passed bool
	get := &cobra.Command{
		Use:   "get --organization-id T [--request-id R] [--failed-validations | --passed-validations]",
		Short: "List onboarding requests, or show one (Get-CustomerKeyOnboardingRequest)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			base := "/customerkey/v1/onboarding/requests"
			q := "?organizationId=" + url.QueryEscape(org)
			if id == "" {
				var out struct {
					Value []onboardingRequest `json:"value"`
				}
				if err := s.call(cmd.Context(), armScope, "GET", base+q, nil, &out); err != nil {
					return err
				}
				rows := make([][]string, 0, len(out.Value))
				for _, r := range out.Value {
					rows = append(rows, []string{r.ID, r.CreatedDate.Format(time.RFC3339), r.Scenario, r.OnboardingMode, r.ValidationResult, r.EnablementResult})
				}
				return pr.print(out.Value, []string{"ID", "CreatedDate", "Scenario", "OnboardingMode", "ValidationResult", "EnablementResult"}, rows)
			}
			var r onboardingRequest
			if err := s.call(cmd.Context(), armScope, "GET", base+"/"+url.PathEscape(id)+q, nil, &r); err != nil {
				return err
			}
			switch {
			case failed:
				return printValidations(pr, r.FailedValidations)
			case passed:
				return printValidations(pr, r.PassedValidations)
			}
			return printRequest(cmd, pr, r)
		},
	}
	get.Flags().StringVar(&org, "organization-id", "", "tenant id (required)")
	get.Flags().StringVar(&id, "request-id", "", "one request's id")
	get.Flags().BoolVar(&failed, "failed-validations", false, "print the request's failed validations ($request.FailedValidations)")
	get.Flags().BoolVar(&passed, "passed-validations", false, "print the request's passed validations ($request.PassedValidations)")
	_ = get.MarkFlagRequired("organization-id")

	var lorg, lscenario, lreason string
	var luris []string
	legacy := &cobra.Command{
		Use:   "legacy-request --organization T --scenario MDEP|EXO|SPO --reason Government|ManagedHSM|SharePoint --key-uri URI --key-uri URI",
		Short: "Ask the operator to onboard by the legacy path (two operator administrators approve)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var r map[string]any
			body := map[string]any{"Organization": lorg, "Scenario": lscenario, "Reason": lreason, "KeyURIs": luris}
			if err := s.call(cmd.Context(), armScope, "POST", "/customerkey/v1/onboarding/legacy-requests", body, &r); err != nil {
				return err
			}
			return pr.printFields(r, [][2]string{{"ID", fmt.Sprint(r["ID"])}, {"State", fmt.Sprint(r["State"])}})
		},
	}
	legacy.Flags().StringVar(&lorg, "organization", "", "tenant id (required)")
	legacy.Flags().StringVar(&lscenario, "scenario", "", "MDEP, EXO or SPO (required)")
	legacy.Flags().StringVar(&lreason, "reason", "", "Government, ManagedHSM or SharePoint (required)")
	legacy.Flags().StringArrayVar(&luris, "key-uri", nil, "a root key's URI (twice)")
	for _, n := range []string{"organization", "scenario", "reason"} {
		_ = legacy.MarkFlagRequired(n)
	}
	var approveID string
	approve := &cobra.Command{
		Use:   "legacy-approve --request-id R",
		Short: "Approve a legacy onboarding request (operator; two different administrators must approve)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var r map[string]any
			if err := s.call(cmd.Context(), armScope, "POST", "/customerkey/v1/onboarding/legacy-requests/"+url.PathEscape(approveID)+"/approve", nil, &r); err != nil {
				return err
			}
			approvals := ""
			if a, ok := r["Approvals"].([]any); ok {
				parts := make([]string, len(a))
				for i, x := range a {
					parts[i] = fmt.Sprint(x)
				}
				approvals = strings.Join(parts, ", ")
			}
			return pr.printFields(r, [][2]string{{"ID", fmt.Sprint(r["ID"])}, {"State", fmt.Sprint(r["State"])}, {"Approvals", approvals}})
		},
	}
	approve.Flags().StringVar(&approveID, "request-id", "", "legacy request id (required)")
	_ = approve.MarkFlagRequired("request-id")
	cmd.AddCommand(newCmd, get, legacy, approve)
	return cmd
}
