-- mod_invitebot: the server side of invitebot (https://durare.org/invitebot).
--
-- invitebot is an XEP-0114 component that mints XEP-0401 invites on this
-- server. From outside it cannot see what a client does with a token, so
-- three of its promises need this module, loaded on the VirtualHost whose
-- accounts the invites create:
--
--   * Single use that holds. Prosody's mod_invites_register remembers a
--     validated invite on the client stream and only checks that it is
--     present when an account is registered: one stream that passed
--     XEP-0445 preauth once can register any number of accounts, even after
--     the token was used or deleted. Here every registration re-validates
--     the token against the invite store, a stream registers one account
--     at most, and a password reset link resets its own account only.
--   * Usage reports. When an account is registered with an invite, the
--     component is told at once which token created which account.
--   * Deletion and introductions. The component (and only it) may delete a
--     token, and may put a new account's inviter in its roster with a
--     subscription request sent and the inviter's own request pre-approved
--     (RFC 6121 3.4), so one tap on the inviter's side makes them mutual
--     contacts.
--
-- Works with Prosody 0.12 and 13. Configuration, on the VirtualHost:
--
--   VirtualHost "example.org"
--       modules_enabled = { "invitebot" }
--       invitebot_component = "invites.example.org"
--
-- Protocol, namespace NS below (all IQs between this host and the
-- component; the component's are refused with forbidden from anyone else):
--
--   host -> component  <iq type='set'><registered xmlns=NS token='T'
--                          jid='user@host' at='XEP-0082 time'/></iq>
--   component -> host  <iq type='get'><status xmlns=NS/></iq>
--                      result: <status xmlns=NS version='1' queued='N'/>
--   component -> host  <iq type='set'><delete xmlns=NS token='T'/></iq>
--   component -> host  <iq type='set'><introduce xmlns=NS jid='user@host'
--                          contact='inviter@anywhere'/></iq>
--
-- The host also lists NS as a disco#info feature.

-- Prosody 13 names its libraries prosody.*; 0.12 does not.
local function lib(name)
	local ok, m = pcall(require, "prosody." .. name);
	if ok then return m; end
	return require(name);
end

local st = lib "util.stanza";
local jid_util = lib "util.jid";
local datetime = lib "util.datetime";
local new_id = lib "util.id".short;
local rostermanager = lib "core.rostermanager";
local usermanager = lib "core.usermanager";

local NS = "https://durare.org/ns/invitebot/0";
local VERSION = "1";

-- Tunables.
-- How long the component has to acknowledge a report before it is sent again.
local report_timeout = 10;
-- How often unacknowledged reports are retried while the component is away.
local retry_interval = 30;
-- Reports older than this are dropped: the component's usage polling has
-- found those invites used by then.
local report_max_age = 7 * 86400;
-- At most this many reports wait; the oldest go first. A component that is
-- away for long must not grow this module's storage without bound.
local max_queued = 1000;
-- How long after registering an account may still be introduced.
local introduce_window = 7 * 86400;
-- How long an introduction waits for the inviter's subscription request.
local introduced_max_age = 90 * 86400;

-- The same refusal Prosody gives a bad token at preauth: clients already
-- know how to explain it, and it tells nobody whether the token existed.
local bad_token_text = "The invite token is invalid or expired";

-- Only the server itself has streams, registrations and a component link;
-- prosodyctl has no use for any of this.
if prosody.process_type ~= "prosody" then
	return;
end

local component = module:get_option_string("invitebot_component");
if component then
	component = jid_util.prep(component);
end
if not component then
	module:log("error", "invitebot_component is not set (or not a valid JID): single use is enforced, "
		.. "but no usage reports are sent and nobody may delete tokens. Add "
		.. "invitebot_component = \"invites.%s\" (the bot's component JID) under this VirtualHost", module.host);
end

local invites = module:depends("invites");

module:add_feature(NS);
if component then
	module:log("info", "Enforcing one account per invite, reporting registrations to %s", component);
end

-- State kept across restarts: reports not yet acknowledged, accounts
-- recently registered with an invite (only those may be introduced), and
-- introductions waiting for the inviter's subscription request. One small
-- record: it changes once per registration at most.
local store = module:open_store("invitebot");
local state = store:get(nil) or {};
state.reports = state.reports or {};
state.recent = state.recent or {};
state.introduced = state.introduced or {};

local function prune(now)
	local kept = {};
	for _, r in ipairs(state.reports) do
		if now - r.at < report_max_age then
			table.insert(kept, r);
		end
	end
	while #kept > max_queued do
		module:log("warn", "Dropping the oldest unacknowledged usage report (for %s): the component has been away too long", kept[1].jid);
		table.remove(kept, 1);
	end
	state.reports = kept;
	for username, at in pairs(state.recent) do
		if now - at >= introduce_window then
			state.recent[username] = nil;
		end
	end
	for username, intro in pairs(state.introduced) do
		if now - intro.at >= introduced_max_age then
			state.introduced[username] = nil;
		end
	end
end

local function save()
	prune(os.time());
	local ok, err = store:set(nil, state);
	if not ok then
		module:log("error", "Could not save invitebot state: %s", err);
	end
end

-- Only the configured component itself may use the component's IQs: every
-- other sender, local users and other components included, is refused.
local function from_component(stanza)
	return component ~= nil and jid_util.prep(stanza.attr.from) == component;
end

local function refuse_sender(event)
	module:log("warn", "Refused invitebot request from %s: only %s may send it",
		tostring(event.stanza.attr.from), tostring(component));
	event.origin.send(st.error_reply(event.stanza, "auth", "forbidden"));
	return true;
end

-- Tokens are secrets: logs name only their beginning.
local function redact(token)
	return (tostring(token):sub(1, 4)) .. "…";
end

-- Single use -----------------------------------------------------------------

local function refuse_registration(event, why)
	event.allowed = false;
	event.error = { type = "cancel", condition = "forbidden", text = bad_token_text };
	-- COMPAT: what mod_register_ibr read before util.error.
	event.error_type, event.error_condition, event.reason = "cancel", "forbidden", bad_token_text;
	module:log("info", "Refused registration of %s: %s", tostring(event.username), why);
end

-- Before mod_invites_register (priority 0), which would let the stream
-- through on the strength of an invite it validated earlier.
module:hook("user-registering", function (event)
	local session = event.session;
	local invite = event.validated_invite or (session and session.validated_invite);
	if not invite then
		return; -- not an invite registration; mod_invites_register decides
	end
	if session and session.invitebot_registered then
		return refuse_registration(event, "this stream already registered an account");
	end
	local current, err = invites.get(invite.token);
	if not current then
		return refuse_registration(event, "invite " .. redact(invite.token) .. " is no longer valid (" .. tostring(err) .. ")");
	end
	-- A password reset link (Prosody 13) sets the password of its own
	-- account; the server would also let it create any other account.
	local reset_for = current.additional_data and current.additional_data.allow_reset;
	if reset_for and reset_for ~= event.username then
		return refuse_registration(event, "a password reset link for " .. tostring(reset_for) .. " creates no other account");
	end
end, 10);

-- Usage reports ----------------------------------------------------------------

local in_flight = {};
local retry_timer;
local flush;

local function drop_report(id)
	for i, r in ipairs(state.reports) do
		if r.id == id then
			table.remove(state.reports, i);
			save();
			return;
		end
	end
end

local function send_report(r)
	module:log("debug", "Sending usage report for %s", r.jid);
	in_flight[r.id] = true;
	local iq = st.iq({ type = "set", from = module.host, to = component, id = new_id() })
		:tag("registered", { xmlns = NS, token = r.token, jid = r.jid, at = datetime.datetime(r.at) });
	local function failed(condition)
		in_flight[r.id] = nil;
		if condition == "forbidden" or condition == "bad-request" then
			-- Sending it again gets the same answer.
			module:log("error", "The component refused the usage report for %s (%s): is its xmpp.domain %s?",
				r.jid, condition, module.host);
			drop_report(r.id);
			return;
		end
		module:log("debug", "Usage report for %s not acknowledged (%s); retrying in %ds", r.jid, condition, retry_interval);
		if not retry_timer then
			retry_timer = module:add_timer(retry_interval, function ()
				retry_timer = nil;
				flush();
			end);
		end
	end
	module:send_iq(iq, nil, report_timeout):next(function (event)
		-- send_iq also resolves with an error that the router hands straight
		-- back (mod_component's "Component unavailable" bounce).
		if event.stanza.attr.type == "error" then
			local _, condition = event.stanza:get_error();
			return failed(condition);
		end
		in_flight[r.id] = nil;
		drop_report(r.id);
	end, function (err)
		failed(type(err) == "table" and err.condition or tostring(err));
	end);
end

function flush()
	if not component then return; end
	module:log("debug", "Flushing %d usage report(s)", #state.reports);
	for _, r in ipairs(state.reports) do
		if not in_flight[r.id] then
			send_report(r);
		end
	end
end

-- After mod_invites_register (priority 0) has used the invite.
module:hook("user-registered", function (event)
	local session = event.session;
	local invite = event.validated_invite or (session and session.validated_invite);
	if not invite then
		return;
	end
	if session then
		session.invitebot_registered = true;
	end
	local now = os.time();
	state.recent[event.username] = now;
	if component then
		table.insert(state.reports, {
			id = new_id(), token = invite.token, at = now,
			jid = jid_util.join(event.username, module.host),
		});
	end
	save();
	flush();
end, -10);

-- A password reset (Prosody 13) spends the stream's invite as well.
module:hook("user-password-reset", function (event)
	local session = event.session;
	if session and (event.validated_invite or session.validated_invite) then
		session.invitebot_registered = true;
	end
end, -10);

-- Discovery ----------------------------------------------------------------------

module:hook("iq-get/host/" .. NS .. ":status", function (event)
	if not from_component(event.stanza) then
		return refuse_sender(event);
	end
	event.origin.send(st.reply(event.stanza)
		:tag("status", { xmlns = NS, version = VERSION, queued = tostring(#state.reports) }));
	-- The component asks when its link comes up: the moment to deliver
	-- what it missed.
	module:add_timer(0, flush);
	return true;
end);

-- Deletion -------------------------------------------------------------------------

module:hook("iq-set/host/" .. NS .. ":delete", function (event)
	local origin, stanza = event.origin, event.stanza;
	if not from_component(stanza) then
		return refuse_sender(event);
	end
	local token = stanza.tags[1].attr.token;
	if not token or token == "" then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "token missing"));
		return true;
	end
	local ok, err = invites.delete_account_invite(token);
	if not ok then
		module:log("error", "Could not delete invite %s: %s", redact(token), tostring(err));
		origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
		return true;
	end
	-- Streams that passed preauth with it are refused at registration by the
	-- user-registering hook above, which asks the store again.
	module:log("info", "Deleted invite %s at the request of %s", redact(token), component);
	origin.send(st.reply(stanza));
	return true;
end);

-- Introductions ------------------------------------------------------------------

module:hook("iq-set/host/" .. NS .. ":introduce", function (event)
	local origin, stanza = event.origin, event.stanza;
	if not from_component(stanza) then
		return refuse_sender(event);
	end
	local el = stanza.tags[1];
	local account = jid_util.prep(el.attr.jid);
	local contact = jid_util.prep(el.attr.contact);
	local username, host, resource;
	if account then
		username, host, resource = jid_util.split(account);
	end
	if not username or host ~= module.host or resource
		or not contact or jid_util.resource(contact) or contact == account then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "jid must be a local account, contact a bare JID"));
		return true;
	end
	-- Only accounts that registered with an invite lately: the component
	-- must not be able to edit the rosters of everyone else.
	if not state.recent[username] or not usermanager.user_exists(username, host) then
		origin.send(st.error_reply(stanza, "cancel", "item-not-found", "no recent registration with an invite"));
		return true;
	end
	-- Pre-approve first, so that a client that answers the request below
	-- with a request of its own at once is approved.
	if not rostermanager.subscribed(username, host, contact)
		or not rostermanager.set_contact_pending_out(username, host, contact) then
		origin.send(st.error_reply(stanza, "wait", "internal-server-error", "could not save the roster"));
		return true;
	end
	rostermanager.roster_push(username, host, contact);
	module:send(st.presence({ type = "subscribe", from = account, to = contact }));
	state.recent[username] = nil;
	state.introduced[username] = { contact = contact, at = os.time() };
	save();
	module:log("info", "Introduced %s to %s: subscription requested, theirs pre-approved", account, contact);
	origin.send(st.reply(stanza));
	return true;
end);

-- Prosody stores a pre-approval (RFC 6121 3.4) but, when the contact's
-- request arrives, only marks it pending and answers subscribed: the
-- account's own roster never gets subscription "from", so it would not send
-- its presence. For the introductions made above, finish the approval the
-- way the RFC says. Before mod_presence (priority 0).
module:hook("presence/bare", function (event)
	local stanza = event.stanza;
	if stanza.attr.type ~= "subscribe" then return; end
	local to = jid_util.bare(stanza.attr.to);
	local from = jid_util.bare(stanza.attr.from);
	local username, host = jid_util.split(to);
	local intro = username and host == module.host and state.introduced[username];
	if not intro or intro.contact ~= from then
		return;
	end
	state.introduced[username] = nil;
	save();
	if not rostermanager.is_contact_preapproved(username, host, from) then
		return; -- the user took the pre-approval back; normal handling
	end
	if not rostermanager.set_contact_pending_in(username, host, from)
		or not rostermanager.subscribed(username, host, from) then
		return; -- leave it to mod_presence
	end
	local roster = rostermanager.load_roster(username, host);
	if roster and roster[from] then
		roster[from].approved = nil;
		rostermanager.save_roster(username, host, roster, from);
	end
	rostermanager.roster_push(username, host, from);
	module:send(st.presence({ type = "subscribed", from = to, to = from }));
	local user = prosody.bare_sessions[to];
	if user then
		for _, session in pairs(user.sessions) do
			if session.presence then
				local pres = st.clone(session.presence);
				pres.attr.from, pres.attr.to = session.full_jid, from;
				module:send(pres);
			end
		end
	end
	module:log("debug", "Approved the pre-approved subscription of %s to %s", from, to);
	return true;
end, 2);

-- Deliver what waited while Prosody was down, once the component is back.
if #state.reports > 0 then
	module:add_timer(retry_interval, function () flush(); end);
end
