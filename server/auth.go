package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/eventstore"
)

// Permission is what a rule allows. Admin includes read and write.
type Permission uint8

// The permissions a rule can grant.
const (
	PermRead  Permission = 1 << iota // read streams and subscribe
	PermWrite                        // append
	PermAdmin = PermRead | PermWrite | 1<<2
)

func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	case PermAdmin:
		return "admin"
	}
	return fmt.Sprintf("Permission(%d)", uint8(p))
}

// AllStreams is the rule target that covers every stream and the global
// log ($all).
const AllStreams = "$all"

// Rule grants a permission on the streams whose names start with On, or on
// every stream and $all when On is AllStreams.
type Rule struct {
	Allow Permission
	On    string
}

func (r Rule) covers(stream string) bool {
	return r.On == AllStreams || strings.HasPrefix(stream, r.On)
}

// Auth holds the bearer tokens a server accepts and what each may do. It
// keeps only SHA-256 hashes of the tokens, and compares them in constant
// time. It is safe for concurrent use and immutable.
type Auth struct {
	tokens []authToken
}

type authToken struct {
	name    string
	hash    [sha256.Size]byte
	expires time.Time // zero: never
	rules   []Rule
}

// authFile is the format of an auth file (see ParseAuth).
type authFile struct {
	Tokens []struct {
		Name    string     `json:"name"`
		Token   string     `json:"token"`
		SHA256  string     `json:"sha256"`
		Expires *time.Time `json:"expires"`
		Rules   []struct {
			Allow string `json:"allow"`
			On    string `json:"on"`
		} `json:"rules"`
	} `json:"tokens"`
}

// minTokenLen is the shortest plaintext token accepted: shorter ones are
// guessable.
const minTokenLen = 16

// LoadAuthFile reads an auth file; see ParseAuth for its format.
func LoadAuthFile(path string) (*Auth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: reading the auth file: %w", err)
	}
	a, err := ParseAuth(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseAuth parses an auth file: a JSON object listing tokens, each with a
// name (for logs and errors), the token itself ("token", at least 16
// characters) or its SHA-256 in hex ("sha256"), an optional RFC 3339
// expiry, and rules granting "read", "write" or "admin" on a stream-name
// prefix or on "$all":
//
//	{"tokens": [
//	  {"name": "billing", "token": "0a6f3c…", "expires": "2027-06-30T00:00:00Z",
//	   "rules": [{"allow": "read", "on": "$all"}, {"allow": "write", "on": "invoice-"}]},
//	  {"name": "ops", "sha256": "9f86d0…", "rules": [{"allow": "admin", "on": "$all"}]}
//	]}
//
// Unknown fields, empty names, prefixes or rule lists, short tokens and
// duplicate names or tokens are errors.
func ParseAuth(data []byte) (*Auth, error) {
	var f authFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("server: invalid auth file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("server: invalid auth file: data after the JSON object")
	}
	a := &Auth{}
	names := make(map[string]bool)
	hashes := make(map[[sha256.Size]byte]bool)
	for i, t := range f.Tokens {
		at, err := parseToken(t.Name, t.Token, t.SHA256, t.Expires)
		if err != nil {
			return nil, fmt.Errorf("server: invalid auth file: tokens[%d]: %w", i, err)
		}
		if names[at.name] || hashes[at.hash] {
			return nil, fmt.Errorf("server: invalid auth file: tokens[%d]: %q or its token appears twice", i, at.name)
		}
		names[at.name], hashes[at.hash] = true, true
		if len(t.Rules) == 0 {
			return nil, fmt.Errorf("server: invalid auth file: tokens[%d] (%s): no rules", i, at.name)
		}
		for j, r := range t.Rules {
			rule, err := parseRule(r.Allow, r.On)
			if err != nil {
				return nil, fmt.Errorf("server: invalid auth file: tokens[%d] (%s).rules[%d]: %w", i, at.name, j, err)
			}
			at.rules = append(at.rules, rule)
		}
		a.tokens = append(a.tokens, at)
	}
	if len(a.tokens) == 0 {
		return nil, errors.New("server: invalid auth file: no tokens")
	}
	return a, nil
}

func parseToken(name, token, sum string, expires *time.Time) (authToken, error) {
	at := authToken{name: name}
	if name == "" {
		return at, errors.New("missing name")
	}
	if expires != nil {
		at.expires = *expires
	}
	switch {
	case token != "" && sum != "":
		return at, errors.New(`give "token" or "sha256", not both`)
	case token != "":
		if len(token) < minTokenLen {
			return at, fmt.Errorf("token shorter than %d characters", minTokenLen)
		}
		at.hash = sha256.Sum256([]byte(token))
	case sum != "":
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != sha256.Size {
			return at, errors.New(`"sha256" is not 64 hex digits`)
		}
		copy(at.hash[:], b)
	default:
		return at, errors.New(`missing "token" or "sha256"`)
	}
	return at, nil
}

func parseRule(allow, on string) (Rule, error) {
	var r Rule
	switch allow {
	case "read":
		r.Allow = PermRead
	case "write":
		r.Allow = PermWrite
	case "admin":
		r.Allow = PermAdmin
	default:
		return r, fmt.Errorf("allow %q: want read, write or admin", allow)
	}
	if on == "" {
		return r, errors.New(`missing "on": a stream-name prefix or "$all"`)
	}
	r.On = on
	return r, nil
}

// Grant is what an authenticated token may do.
type grant struct {
	name  string
	rules []Rule
}

// allows reports whether g has perm on stream (or, for AllStreams, on $all).
func (g *grant) allows(perm Permission, stream string) bool {
	for _, r := range g.rules {
		if r.Allow&perm == perm && (r.On == AllStreams || (stream != AllStreams && strings.HasPrefix(stream, r.On))) {
			return true
		}
	}
	return false
}

// Errors of authentication. Their messages never echo the token.
var (
	errNoToken      = errors.New("missing bearer token: send Authorization: Bearer TOKEN")
	errInvalidToken = errors.New("invalid bearer token")
	errExpiredToken = errors.New("expired bearer token")
)

// authenticate returns the grant of the bearer token in header, an
// Unauthenticated error when it is missing, unknown or expired.
func (a *Auth) authenticate(header string, now time.Time) (*grant, *connect.Error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return nil, connect.NewError(connect.CodeUnauthenticated, errNoToken)
	}
	h := sha256.Sum256([]byte(token))
	var found *authToken
	for i := range a.tokens { // no early exit: the time taken says nothing
		if subtle.ConstantTimeCompare(h[:], a.tokens[i].hash[:]) == 1 {
			found = &a.tokens[i]
		}
	}
	switch {
	case found == nil:
		return nil, connect.NewError(connect.CodeUnauthenticated, errInvalidToken)
	case !found.expires.IsZero() && !now.Before(found.expires):
		return nil, connect.NewError(connect.CodeUnauthenticated, errExpiredToken)
	}
	return &grant{name: found.name, rules: found.rules}, nil
}

type grantKey struct{}

// authorizer checks what callers may do; with a nil Auth, everything is
// allowed.
type authorizer struct {
	auth *Auth
	now  func() time.Time
}

// fromHeader authenticates an HTTP request's Authorization header.
func (z *authorizer) fromHeader(h http.Header) (*grant, *connect.Error) {
	if z.auth == nil {
		return nil, nil
	}
	return z.auth.authenticate(h.Get("Authorization"), z.now())
}

// need returns PermissionDenied unless the caller of ctx has perm on
// stream (AllStreams: on $all).
func (z *authorizer) need(ctx context.Context, perm Permission, stream string) error {
	if z.auth == nil {
		return nil
	}
	g, _ := ctx.Value(grantKey{}).(*grant)
	return g.need(perm, stream)
}

func (g *grant) need(perm Permission, stream string) error {
	if g == nil {
		return connect.NewError(connect.CodeUnauthenticated, errNoToken)
	}
	if g.allows(perm, stream) {
		return nil
	}
	what := fmt.Sprintf("stream %q", stream)
	if stream == AllStreams {
		what = "$all"
	}
	return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("token %q may not %s %s", g.name, perm, what))
}

// readFilter returns filter, narrowed if need be, when the caller of ctx
// may read the events it selects from $all: read on $all allows any filter;
// read on a prefix P allows a stream-prefix filter that starts with P, and
// a category filter C when P is a prefix of C (every stream of C starts
// with C) or P is C+"-": the filter is then narrowed to the streams
// starting with C+"-", leaving out a stream named C itself.
func (z *authorizer) readFilter(ctx context.Context, f eventstore.Filter) (eventstore.Filter, error) {
	if z.auth == nil {
		return f, nil
	}
	g, _ := ctx.Value(grantKey{}).(*grant)
	return g.readFilter(f)
}

func (g *grant) readFilter(f eventstore.Filter) (eventstore.Filter, error) {
	if g == nil {
		return f, connect.NewError(connect.CodeUnauthenticated, errNoToken)
	}
	if g.allows(PermRead, AllStreams) || (f.StreamPrefix != "" && g.allows(PermRead, f.StreamPrefix)) {
		return f, nil
	}
	if c := f.Category; c != "" {
		if g.allows(PermRead, c) {
			return f, nil
		}
		dash := c + "-"
		if g.allows(PermRead, dash) && strings.HasPrefix(dash, f.StreamPrefix) {
			f.StreamPrefix = dash
			return f, nil
		}
	}
	return f, g.need(PermRead, AllStreams)
}

// authInterceptor authenticates every Connect call and puts its grant in
// the context, for the handlers to check with need and readFilter.
type authInterceptor struct{ z *authorizer }

func (i *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		g, err := i.z.fromHeader(req.Header())
		if err != nil {
			return nil, err
		}
		return next(context.WithValue(ctx, grantKey{}, g), req)
	}
}

func (i *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		g, err := i.z.fromHeader(conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(context.WithValue(ctx, grantKey{}, g), conn)
	}
}

// httpAuthError writes err, an Unauthenticated or PermissionDenied error,
// as a plain HTTP response.
func httpAuthError(w http.ResponseWriter, err error) {
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fjord"`)
	}
	var ce *connect.Error
	msg := err.Error()
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	http.Error(w, msg, httpStatus(connect.CodeOf(err)))
}

// subscribe checks that the caller of ctx may follow what opts select: read
// on the stream, or on what the $all filter selects (see readFilter, which
// may narrow opts.Filter).
func (z *authorizer) subscribe(ctx context.Context, opts *eventstore.SubscribeOptions) error {
	if opts.Stream != "" {
		return z.need(ctx, PermRead, string(opts.Stream))
	}
	f, err := z.readFilter(ctx, opts.Filter)
	opts.Filter = f
	return err
}

// protect serves h to callers with perm on stream (AllStreams: $all).
func (z *authorizer) protect(perm Permission, stream string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, err := z.fromHeader(r.Header)
		if err != nil {
			httpAuthError(w, err)
			return
		}
		if z.auth != nil {
			if err := g.need(perm, stream); err != nil {
				httpAuthError(w, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
