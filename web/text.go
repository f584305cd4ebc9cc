package web

// Every sentence a person reads on these pages lives in this file, in
// English, the source language. Other languages are message catalogs in
// locales/ whose keys are the names of Text's fields (see i18n.go), so a
// new sentence is one field here, its English below and one line per
// catalog. Strings with placeholders use fmt's indexed verbs (%[1]s, %[2]s)
// so a translator may reorder them.

// Text holds the user-visible strings of the web pages.
type Text struct {
	Lang string // BCP 47 tag for <html lang>
	// DateLayout formats the expiry (a time.Layout), always shown in UTC
	// because the server cannot know the reader's time zone without
	// JavaScript.
	DateLayout string
	// Months and Weekdays name what DateLayout's "January" and "Monday"
	// stand for: Go's time package writes only English names.
	Months   MonthNames
	Weekdays WeekdayNames

	// Landing page.
	LandingTitle string // %[1]s domain
	InvitedYou   string // %[1]s inviter, %[2]s domain
	InvitedAnon  string // %[1]s domain; when the inviter is unknown
	ExpiresAt    string // %[1]s time left (one of TimeLeft*), %[2]s date and time (UTC)
	// The time left is shown beside the date because the reader would
	// otherwise have to convert from UTC; the largest fitting unit is used.
	TimeLeftDays    Plural // %[1]d days, 2 or more
	TimeLeftHours   Plural // %[1]d hours, 2 to 36
	TimeLeftMinutes Plural // %[1]d minutes, 1 to 90
	NoExpiry        string
	AppIntro        string
	OpenInApp       string
	QRTitle         string
	QRAlt           string
	QRHint          string
	ClientsTitle    string
	PreauthNote     string
	NoPreauthNote   string

	// Registration form.
	FormTitle      string
	FormIntro      string // %[1]s domain
	Username       string
	UsernameHint   string // the rules, shown under the field before anything went wrong
	Password       string
	PasswordHint   string // %[1]d minimum length: always MinPasswordLen, so no Plural
	PasswordRepeat string
	Submit         string

	// Form errors.
	ErrUsernameEmpty   string
	ErrUsernameInvalid string
	ErrUsernameTaken   string
	ErrPasswordShort   string // %[1]d minimum length: always MinPasswordLen, so no Plural
	ErrPasswordLong    string
	ErrPasswordChars   string
	ErrPasswordMatch   string
	ErrNotAcceptable   string
	ErrFormExpired     string
	ErrTooMany         string
	ErrInProgress      string
	ErrInternal        string

	// Success page.
	SuccessTitle string
	SuccessLead  string
	YourAddress  string
	NextSteps    string
	KeepPassword string

	// Error pages.
	GoneTitle       string
	GoneBody        string
	TokenUsedBody   string
	NotFoundTitle   string
	NotFoundBody    string
	InternalTitle   string
	ForbiddenTitle  string
	TooManyTitle    string
	AskInviterAgain string
	FooterPoweredBy string

	// Platforms lists the recommended apps per kind of device, in the order
	// the pages show them. How to sign in differs per app, so it is text.
	Platforms []Platform

	// More registration form errors.
	ErrUsernameLong      string
	ErrUsernameLookalike string

	// Password reset pages: the landing page of a reset link (its %s is
	// the account) and the page after the new password is set.
	ResetTitle     string
	ResetHeadline  string
	ResetIntro     string
	ResetSubmit    string
	ResetDoneTitle string
	ResetDoneLead  string

	// Account requests: the request page, its errors, the page shown when
	// requests are closed, and the requester's status page in each state.
	// The approved state is the landing page with StatusApproved on top.
	RequestTitle          string // %[1]s domain
	RequestIntro          string // %[1]s domain
	RequestName           string
	RequestNameHint       string
	RequestContact        string
	RequestContactHint    string
	RequestMessage        string
	RequestMessageHint    string
	RequestHoneypot       string // label of a field only robots fill in
	RequestSubmit         string
	RequestClosedTitle    string
	RequestClosedFull     string
	RequestClosedPaused   string
	ErrRequestName        string
	ErrRequestNameLong    string // %[1]d maximum length in characters
	ErrRequestMessage     string
	ErrRequestMessageLong string // %[1]d maximum length in characters
	ErrRequestContact     string
	ErrRequestTooMany     string
	StatusWaitingTitle    string
	StatusWaitingBody     string // %[1]s the name they gave, %[2]s domain
	StatusOpenUntil       string // %[1]s date and time (UTC)
	StatusBookmarkTitle   string
	StatusBookmark        string
	StatusDeniedTitle     string
	StatusDeniedBody      string // %[1]s domain
	StatusDeniedReason    string // %[1]s the reason the approver gave
	StatusExpiredTitle    string
	StatusExpiredBody     string // %[1]s date and time (UTC)
	StatusApproved        string
	StatusNotFoundTitle   string
	StatusNotFoundBody    string
	RequestAgain          string

	// Event link pages: the page of a link shared in a room (a workshop,
	// a meetup) that hands each visitor an invitation of their own, and
	// the pages saying why it hands out none now.
	EventHeadline      string // %[1]s who shared the link, %[2]s domain
	EventIntro         string
	EventOpenUntil     string // %[1]s time left (one of TimeLeft*), %[2]s date and time (UTC)
	EventLeft          Plural // %[1]d invitations the link may still hand out
	EventSubmit        string
	EventNotFoundTitle string
	EventUsedUpTitle   string
	EventUsedUpBody    string
	EventExpiredTitle  string
	EventExpiredBody   string
	EventClosedTitle   string
	EventClosedBody    string
	EventAskAgain      string
	PausedTitle        string
	PausedBody         string
	DailyLimitTitle    string
	DailyLimitBody     string
	// The QR code of the event page's own address, for a projector.
	EventQRTitle string
	EventQRAlt   string
	EventQRHint  string

	// The heading of the reset page's form.
	ResetFormTitle string
	// What a reset link's pages say where an invitation's say
	// ExpiresAt, NoExpiry, ErrInProgress, GoneTitle, GoneBody,
	// TokenUsedBody and AskInviterAgain: a reset link is a link, not an
	// invitation.
	ResetExpiresAt     string // %[1]s time left (one of TimeLeft*), %[2]s date and time (UTC)
	ResetNoExpiry      string
	ResetErrInProgress string
	ResetGoneTitle     string
	ResetGoneBody      string
	ResetTokenUsedBody string
	ResetAskAgain      string

	// The status page of an approved request whose invitation created the
	// account.
	StatusCreatedTitle string
	StatusCreatedBody  string // %[1]s the account's address
	StatusCreatedAnon  string // when the address is not known
	StatusCreatedHint  string

	// The page for a request with a method the address does not take
	// (405): a program's mistake more than a person's.
	MethodNotAllowedTitle string
	MethodNotAllowedBody  string
}

// English is the default and, for now, only text.
var English = Text{
	Lang:       "en",
	DateLayout: "Monday 2 January 2006, 15:04 UTC",
	Months: MonthNames{"January", "February", "March", "April", "May", "June",
		"July", "August", "September", "October", "November", "December"},
	Weekdays: WeekdayNames{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},

	LandingTitle:    "Join %[1]s",
	InvitedYou:      "%[1]s invited you to %[2]s",
	InvitedAnon:     "You are invited to %[1]s",
	ExpiresAt:       "This invitation is valid for %[1]s, until %[2]s.",
	TimeLeftDays:    Plural{One: "%[1]d more day", Other: "%[1]d more days"},
	TimeLeftHours:   Plural{One: "%[1]d more hour", Other: "%[1]d more hours"},
	TimeLeftMinutes: Plural{One: "%[1]d more minute", Other: "%[1]d more minutes"},
	NoExpiry:        "This invitation can be used once.",
	AppIntro:        "Already have one of the chat apps below? Open the invitation in it, and the app sets up your new account.",
	OpenInApp:       "Open in your app",
	QRTitle:         "On another device?",
	QRAlt:           "QR code of the invitation",
	QRHint:          "Scan this code with the chat app or the camera of the phone or tablet you want to use.",
	ClientsTitle:    "No app yet?",
	PreauthNote:     "Install one, then tap “Open in your app” or scan the code with it: the app creates your account.",
	NoPreauthNote:   "These cannot open the invitation: create your account below, then sign in.",

	FormTitle:      "Create your account here",
	FormIntro:      "Works with any app. Your address will be name@%[1]s.",
	Username:       "Username",
	UsernameHint:   "Letters, digits, dots and dashes, no spaces; capitals become small letters.",
	Password:       "Password",
	PasswordHint:   "At least %[1]d characters.",
	PasswordRepeat: "Password again",
	Submit:         "Create account",

	ErrUsernameEmpty:   "Please choose a username.",
	ErrUsernameInvalid: "That username cannot be used. Use letters, digits, dots and dashes, without spaces or @.",
	ErrUsernameTaken:   "That username is already taken. Please choose another one.",
	ErrPasswordShort:   "The password is too short: use at least %[1]d characters.",
	ErrPasswordLong:    "The password is too long.",
	ErrPasswordChars:   "The password contains a character the server does not accept, such as a tab or another control character, a private-use character, or right-to-left letters mixed with left-to-right ones. Please choose another password.",
	ErrPasswordMatch:   "The two passwords do not match.",
	ErrNotAcceptable:   "The server did not accept this username or password. Please try another.",
	ErrFormExpired:     "The form expired or your browser did not send back our cookie. Please try again.",
	ErrTooMany:         "Too many attempts from your network. Please wait a few minutes and try again.",
	ErrInProgress:      "This invitation is being used right now. Wait a moment, then reload the page.",
	ErrInternal:        "Something went wrong on our side. Please try again in a few minutes.",

	SuccessTitle: "Your account is ready",
	SuccessLead:  "Welcome! Sign in with your new address and the password you chose.",
	YourAddress:  "Your address",
	NextSteps:    "Next steps",
	KeepPassword: "Keep your password safe: nobody can reset it for you from here.",

	GoneTitle:       "This invitation can no longer be used",
	GoneBody:        "It was already used, cancelled, or it expired.",
	TokenUsedBody:   "The server no longer accepts this invitation: it was already used or it expired.",
	NotFoundTitle:   "Invitation not found",
	NotFoundBody:    "Check that the link is complete.",
	InternalTitle:   "Something went wrong",
	ForbiddenTitle:  "Please try again",
	TooManyTitle:    "Too many attempts",
	AskInviterAgain: "Ask the person who invited you for a new invitation.",
	FooterPoweredBy: "Invitations by invitebot",

	Platforms: []Platform{
		{Name: "Android", Clients: []Client{
			{Name: "Conversations", URL: "https://conversations.im/", Preauth: true,
				Login: "Choose “I already have an account”, then enter your address and password."},
			{Name: "Monocles Chat", URL: "https://monocles.eu/", Preauth: true,
				Login: "Choose “I already have an account”, then enter your address and password."},
		}},
		{Name: "iPhone and iPad", Clients: []Client{
			{Name: "Monal", URL: "https://monal-im.org/", Preauth: true,
				Login: "Choose “Login”, then enter your address and password."},
			{Name: "Siskin IM", URL: "https://siskin.im/", Preauth: true,
				Login: "Choose “Add account”, then “Existing account”, and enter your address and password."},
		}},
		{Name: "Computer", Clients: []Client{
			{Name: "Dino", URL: "https://dino.im/",
				Login: "Choose “Sign in”, then enter your address and password."},
			{Name: "Gajim", URL: "https://gajim.org/",
				Login: "Choose “Log In”, then enter your address and password."},
		}},
	},

	ErrUsernameLong:      "That username is too long. Please choose a shorter one.",
	ErrUsernameLookalike: "That username could pass for a different one: it mixes alphabets, or uses letters that only look like Latin ones (such as a Cyrillic “а”). Please choose another.",

	ResetTitle:     "Set a new password",
	ResetHeadline:  "Set a new password for %s",
	ResetIntro:     "Someone who looks after this service made this link so that you can choose a new password. It works once; your contacts and chats stay as they are.",
	ResetSubmit:    "Set new password",
	ResetDoneTitle: "Your new password is set",
	ResetDoneLead:  "Sign in again with your address and the new password, in every app you use.",

	RequestTitle:          "Ask for an account on %[1]s",
	RequestIntro:          "Accounts on %[1]s are by invitation. If you know nobody here who can invite you, ask: a person who looks after the service reads your request, and if they approve it, you get an invitation.",
	RequestName:           "What should we call you?",
	RequestNameHint:       "A name or nickname; it need not be your real name.",
	RequestContact:        "Your chat address elsewhere (optional)",
	RequestContactHint:    "If you already have an XMPP address, such as name@example.org, we tell you there when your request is answered.",
	RequestMessage:        "Who do you know here, or why would you like an account?",
	RequestMessageHint:    "A few words help the person who reads it decide.",
	RequestHoneypot:       "Leave this field empty",
	RequestSubmit:         "Send request",
	RequestClosedTitle:    "Requests are closed for now",
	RequestClosedFull:     "Many requests are waiting for an answer already. Please come back in a few days.",
	RequestClosedPaused:   "New accounts are paused for now. Please come back later.",
	ErrRequestName:        "Please tell us what to call you.",
	ErrRequestNameLong:    "That name is too long: use at most %[1]d characters.",
	ErrRequestMessage:     "Please write a few words about who you know here, or why you would like an account.",
	ErrRequestMessageLong: "That is too long: use at most %[1]d characters.",
	ErrRequestContact:     "That is not a chat address like name@example.org. Leave it empty if you have none.",
	ErrRequestTooMany:     "Too many requests from your network. Please try again in an hour.",
	StatusWaitingTitle:    "Your request is waiting for an answer",
	StatusWaitingBody:     "Thank you, %[1]s. A person who looks after %[2]s will read your request. If they approve it, this page becomes your invitation.",
	StatusOpenUntil:       "If nobody answers by %[1]s, the request lapses and you may ask again.",
	StatusBookmarkTitle:   "Keep this page",
	StatusBookmark:        "Bookmark it or copy its address: it is the only way back to your request, and nobody else can open it.",
	StatusDeniedTitle:     "Your request was declined",
	StatusDeniedBody:      "A person who looks after %[1]s read your request and declined it.",
	StatusDeniedReason:    "The reason given: %[1]s",
	StatusExpiredTitle:    "Your request lapsed",
	StatusExpiredBody:     "Nobody answered it by %[1]s.",
	StatusApproved:        "Your request was approved: this is your invitation.",
	StatusNotFoundTitle:   "Request not found",
	StatusNotFoundBody:    "Check that the address is complete: it is long, and every character counts.",
	RequestAgain:          "Ask again",

	EventHeadline:      "%[1]s invites you to %[2]s",
	EventIntro:         "Everyone who opens this link gets an invitation of their own. Continue to get yours: it creates one account, for you.",
	EventOpenUntil:     "The link works for %[1]s, until %[2]s.",
	EventLeft:          Plural{One: "%[1]d invitation left", Other: "%[1]d invitations left"},
	EventSubmit:        "Get my invitation",
	EventNotFoundTitle: "Link not found",
	EventUsedUpTitle:   "This link is used up",
	EventUsedUpBody:    "All of its invitations have been handed out.",
	EventExpiredTitle:  "This link has expired",
	EventExpiredBody:   "It was open for a limited time only.",
	EventClosedTitle:   "This link was closed",
	EventClosedBody:    "It no longer hands out invitations.",
	EventAskAgain:      "Ask the person who shared it for an invitation of your own.",
	PausedTitle:        "Invitations are paused",
	PausedBody:         "This service is not handing out invitations right now. Please try again later.",
	DailyLimitTitle:    "No more invitations today",
	DailyLimitBody:     "This service has handed out as many invitations as it may today. Please try again later.",
	EventQRTitle:       "Scan to get an invitation",
	EventQRAlt:         "QR code of this page",
	EventQRHint:        "The code opens this page. Show it on a projector or a screen so that everyone in the room can get an invitation of their own; showing it hands out none.",

	ResetFormTitle:     "Your new password",
	ResetExpiresAt:     "This link works for %[1]s, until %[2]s.",
	ResetNoExpiry:      "This link works once.",
	ResetErrInProgress: "This link is being used right now. Wait a moment, then reload the page.",
	ResetGoneTitle:     "This link can no longer be used",
	ResetGoneBody:      "It was already used, cancelled, or it expired.",
	ResetTokenUsedBody: "The server no longer accepts this link: it was already used or it expired.",
	ResetAskAgain:      "Ask the person who looks after this service for a new link.",

	StatusCreatedTitle: "Your account was created",
	StatusCreatedBody:  "Your request was approved, and the account %[1]s was created with it.",
	StatusCreatedAnon:  "Your request was approved, and an account was created with it.",
	StatusCreatedHint:  "Sign in to it in your chat app, with the password chosen when it was created.",

	MethodNotAllowedTitle: "This page cannot do that",
	MethodNotAllowedBody:  "It does not take this kind of request. Open its address in a web browser.",
}

// Client is a recommended XMPP app.
type Client struct {
	// Name is the app's name as its authors write it.
	Name string
	// URL is the project's own site rather than a store page, because
	// stores differ per country and platform.
	URL string
	// Preauth reports whether the app registers straight from an XEP-0401
	// URI. Those without it need the browser form.
	Preauth bool
	// Login says where to sign in with an existing account, for the
	// success page.
	Login string
}

// Platform groups the clients recommended for one kind of device.
type Platform struct {
	// Name is what the device kind is called, e.g. "Android".
	Name string
	// Clients are the apps recommended for it, best first.
	Clients []Client
}

// Preauth reports whether every app listed for the platform can register
// straight from the invitation, which decides the note shown under it.
func (p Platform) Preauth() bool {
	for _, c := range p.Clients {
		if !c.Preauth {
			return false
		}
	}
	return true
}
