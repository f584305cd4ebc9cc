package ejabberd

// Capabilities is what ejabberd lets the minter account do, found by
// asking (Detect).
type Capabilities struct {
	Mint   bool // urn:xmpp:invite#create-account (access_create_account)
	Resets bool // generate_reset_token
	List   bool // list_invites
	Delete bool // delete_invite_by_token
	Check  bool // check_account
}
