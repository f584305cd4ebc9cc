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
--     token the bot minted, and may put an account that registered with one
--     in its inviter's roster with a subscription request sent and the
--     inviter's own request pre-approved (RFC 6121 3.4), so one tap on the
--     inviter's side makes them mutual contacts.
--
-- The module gives the component no more than that: tokens an admin or a
-- user minted otherwise (prosodyctl, the admin shell, their own ad-hoc
-- commands) can be neither deleted by it nor reported to it, and accounts
-- they created cannot be introduced.
--
-- Works with Prosody 0.12 and 13. Configuration, on the VirtualHost:
--
--   VirtualHost "example.org"
--       modules_enabled = { "invitebot" }
--       invitebot_component = "invites.example.org"
--       -- only when the bot mints as an account (its xmpp.minter):
--       invitebot_minter = "minter@example.org"
--
-- invitebot_component must name a Component of this same Prosody: anything
-- else (a typo, a host elsewhere) is refused with an error in the log, and
-- then nothing is reported to or accepted from anybody.
--
-- Protocol, namespace NS below (all IQs between this host and the
-- component; the component's are refused with forbidden from anyone else):
--
--   host -> component  <iq type='set'><registered xmlns=NS token='T'
--                          jid='user@host' at='XEP-0082 time'/></iq>
--   component -> host  <iq type='get'><status xmlns=NS/></iq>
--                      result: <status xmlns=NS version='1' queued='N'/>
--   component -> host  <iq type='set'><delete xmlns=NS token='T'/></iq>
--   component -> host  <iq type='set'><purge xmlns=NS/></iq>
--                      result: <purged xmlns=NS count='N'/>
--   component -> host  <iq type='get'><minted xmlns=NS since='unix time'/></iq>
--                      result: <minted xmlns=NS><token created='unix time'>T</token>...</minted>
--   component -> host  <iq type='set'><introduce xmlns=NS jid='user@host'
--                          contact='inviter@anywhere'/></iq>
--   component -> host  <iq type='set'><suspend xmlns=NS jid='user@host'
--                          reason='R'/></iq>
--                      result: <suspended xmlns=NS how='disabled|blocked'/>
--   component -> host  <iq type='set'><unsuspend xmlns=NS jid='user@host'/></iq>
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
-- How often records that outlived the limits above are removed from storage.
local sweep_interval = 86400;
-- Of each kind of refusal, at most one per this many seconds is logged at
-- its level; the others go to debug and are counted, and the next one
-- logged at its level says how many there were. Anybody who can reach the
-- host can provoke refusals, and must not be able to flood the log with them.
local refusal_log_interval = 60;

-- The same refusal Prosody gives a bad token at preauth: clients already
-- know how to explain it, and it tells nobody whether the token existed.
local bad_token_text = "The invite token is invalid or expired";

-- The ad-hoc commands (mod_invites_adhoc) through which the bot mints: an
-- account invite (0.12 and 13), a password reset link (13).
local NODE_CREATE_ACCOUNT = "urn:xmpp:invite#create-account";
local NODE_PASSWORD_RESET = "xmpp:prosody.im/mod_invites_adhoc#password-reset";

-- Only the server itself has streams, registrations and a component link;
-- prosodyctl has no use for any of this.
if prosody.process_type ~= "prosody" then
	return;
end

local unpack = table.unpack or unpack; -- luacheck: ignore 143

local invites = module:depends("invites");
-- mod_invites' own token storage, read and written directly only where its
-- functions do not reach: expired tokens (see purge_expired_tokens). The
-- map store finds one token, the keyval view of the same records lists
-- them all, with the internal storage and SQL alike.
local token_store = module:open_store("invite_token", "map");
local token_list = module:open_store("invite_token");

module:add_feature(NS);

-- Logging refusals ------------------------------------------------------------

-- A logger for one kind of refusal, rate-limited as refusal_log_interval
-- says.
local function refusal_logger(level)
	local last, suppressed = nil, 0;
	return function (fmt, ...)
		local now = os.time();
		if last and now - last < refusal_log_interval then
			suppressed = suppressed + 1;
			module:log("debug", fmt, ...);
			return;
		end
		if suppressed > 0 then
			local args, n = { ... }, select("#", ...);
			args[n + 1], args[n + 2] = suppressed, now - last;
			module:log(level, fmt .. " (and %d more like it in the last %d s, logged at debug level)", unpack(args, 1, n + 2));
		else
			module:log(level, fmt, ...);
		end
		last, suppressed = now, 0;
	end
end

local log_refused_request = refusal_logger("warn");
local log_refused_registration = refusal_logger("info");

-- Who the bot is ----------------------------------------------------------------

-- invitebot_component as configured (prepped), and the same once it is
-- known to be a Component of this server: only then is anything sent to it
-- or accepted from it. A misspelt name would otherwise send every report
-- (token and new address) to whatever it names, off the server if s2s is on.
local wanted_component = module:get_option_string("invitebot_component");
local component;
if wanted_component then
	local prepped = jid_util.prep(wanted_component);
	if not prepped or jid_util.node(prepped) or jid_util.resource(prepped) then
		module:log("error", "invitebot_component = %q is not a host name: ignored", wanted_component);
		prepped = nil;
	end
	wanted_component = prepped;
end
if not wanted_component then
	module:log("error", "invitebot_component is not set (or not a valid JID): single use is enforced, "
		.. "but no usage reports are sent and nobody may delete tokens. Add "
		.. "invitebot_component = \"invites.%s\" (the bot's component JID) under this VirtualHost", module.host);
end

-- The account the bot mints as when it has one (its xmpp.minter), instead
-- of the component.
local minter = module:get_option_string("invitebot_minter");
if minter then
	local prepped = jid_util.prep(minter);
	local node, host, resource;
	if prepped then
		node, host, resource = jid_util.split(prepped);
	end
	if not node or host ~= module.host or resource then
		module:log("error", "invitebot_minter = %q is not an account of %s: ignored", minter, module.host);
		prepped = nil;
	end
	minter = prepped;
end

-- Whether jid (any resource) is the bot: the component or the minter.
local function is_bot(jid)
	local bare = jid and jid_util.bare(jid);
	return bare ~= nil and (bare == component or bare == minter);
end

-- Only the configured component itself may use the component's IQs: every
-- other sender, local users and other components included, is refused.
local function from_component(stanza)
	return component ~= nil and jid_util.prep(stanza.attr.from) == component;
end

local function refuse_sender(event)
	log_refused_request("Refused invitebot request from %s: only %s may send it",
		tostring(event.stanza.attr.from), tostring(component or wanted_component));
	event.origin.send(st.error_reply(event.stanza, "auth", "forbidden"));
	return true;
end

-- Tokens are secrets: logs name only their beginning.
local function redact(token)
	return (tostring(token):sub(1, 4)) .. "…";
end

-- The bot's tokens --------------------------------------------------------------

-- The component may delete, hear about and introduce the accounts of only
-- the invites the bot minted. What Prosody lets a module observe of that:
--
--   * create-account (0.12 and 13) stores the command's sender as
--     additional_data.source in the invite itself;
--   * the password reset command (13) stores nothing of the sort, and the
--     "invite-created" event mod_invites fires carries the invite only,
--     not who asked for it.
--
-- So while the component or the minter runs one of the two commands, its
-- bare JID is remembered for the thread running the command (a wrapper
-- around the ad-hoc IQ event), and "invite-created", which mod_invites
-- fires in that same thread before it stores the invite, writes it into
-- the invite as additional_data.invitebot_minter. The mark lives and dies
-- with the token in Prosody's own invite store: nothing to keep in step
-- here. Tokens minted before this module marked them still count by their
-- source. Anything an admin mints with prosodyctl or the admin shell, or
-- with the commands as themselves, has neither and is not the bot's.
local minting_actor = setmetatable({}, { __mode = "k" });
local main_thread = {}; -- Lua 5.1 has no coroutine object for the main thread

local function current_thread()
	return coroutine.running() or main_thread;
end

module:wrap_event("iq-set/host/http://jabber.org/protocol/commands:command", function (handlers, event_name, event)
	local stanza = event.stanza;
	local command = stanza.tags[1];
	local node = command and command.attr.node;
	if (node ~= NODE_CREATE_ACCOUNT and node ~= NODE_PASSWORD_RESET) or not is_bot(stanza.attr.from) then
		return handlers(event_name, event);
	end
	local thread = current_thread();
	minting_actor[thread] = jid_util.bare(stanza.attr.from);
	-- pcall, so that a failing command leaves no actor behind for the
	-- next invite this thread creates.
	local ok, ret = pcall(handlers, event_name, event);
	minting_actor[thread] = nil;
	if not ok then
		error(ret, 0);
	end
	return ret;
end);

module:hook("invite-created", function (invite)
	local actor = minting_actor[current_thread()];
	if not actor or invite.type ~= "register" then
		return;
	end
	invite.additional_data = invite.additional_data or {};
	invite.additional_data.invitebot_minter = actor;
end, 10);

-- Whether invite (as mod_invites returns it) is one the bot minted.
local function minted_by_bot(invite)
	local data = invite and invite.type == "register" and invite.additional_data;
	if type(data) ~= "table" then
		return false;
	end
	return is_bot(data.invitebot_minter) or is_bot(data.source);
end

-- State -------------------------------------------------------------------------

-- Kept across restarts, one storage record per item, so that a change
-- rewrites one small record however many are kept (with the internal
-- storage, one file; with SQL, one row):
--
--   * reports not yet acknowledged, in invitebot_report under "r:" and the
--     report's id (":" keeps it from ever being a username, whose records
--     Prosody purges when the account is deleted);
--   * accounts registered with one of the bot's invites lately (only those
--     may be introduced), then introductions waiting for the inviter's
--     subscription request, in invitebot_account under the username:
--     { registered = time } or { introduced = { contact = jid, at = time } }.
--
-- Both are also held in memory, read once at start.
local report_store = module:open_store("invitebot_report");
local account_store = module:open_store("invitebot_account");

local reports = {};  -- oldest first
local accounts = {}; -- username -> record

local function report_key(id)
	return "r:" .. id;
end

local function save_report(r)
	local ok, err = report_store:set(report_key(r.id), r);
	if not ok then
		module:log("error", "Could not save the usage report for %s: %s", r.jid, tostring(err));
	end
end

local function forget_report(id)
	local ok, err = report_store:set(report_key(id), nil);
	if not ok then
		module:log("error", "Could not remove an acknowledged usage report: %s", tostring(err));
	end
end

local function save_account(username)
	local ok, err = account_store:set(username, accounts[username]);
	if not ok then
		module:log("error", "Could not save the invitebot record of %s: %s", username, tostring(err));
	end
end

local function account_expired(rec, now)
	if rec.registered then
		return now - rec.registered >= introduce_window;
	end
	if rec.introduced then
		return now - (rec.introduced.at or 0) >= introduced_max_age;
	end
	return true;
end

-- Removes the reports at index i from memory and storage.
local function remove_report_at(i)
	local r = table.remove(reports, i);
	forget_report(r.id);
	return r;
end

local function add_report(r)
	table.insert(reports, r);
	save_report(r);
	while #reports > max_queued do
		local dropped = remove_report_at(1);
		module:log("warn", "Dropping the oldest unacknowledged usage report (for %s): the component has been away too long", dropped.jid);
	end
end

local function sweep()
	local now = os.time();
	for i = #reports, 1, -1 do
		if now - reports[i].at >= report_max_age then
			remove_report_at(i);
		end
	end
	for username, rec in pairs(accounts) do
		if account_expired(rec, now) then
			accounts[username] = nil;
			save_account(username);
		end
	end
	return sweep_interval;
end

-- All keys of a store, or nil when its driver cannot list them.
local function store_keys(store)
	if not store.users then
		return nil;
	end
	local keys = {};
	for key in store:users() do
		table.insert(keys, key);
	end
	return keys;
end

local function load_state()
	local now = os.time();
	local keys = store_keys(report_store);
	for _, key in ipairs(keys or {}) do
		local r = report_store:get(key);
		if type(r) == "table" and r.id and report_key(r.id) == key and r.token and r.jid and r.at
			and now - r.at < report_max_age then
			table.insert(reports, r);
		else
			report_store:set(key, nil);
		end
	end
	table.sort(reports, function (a, b)
		if a.at ~= b.at then return a.at < b.at; end
		return a.id < b.id;
	end);
	local users = store_keys(account_store);
	for _, username in ipairs(users or {}) do
		local rec = account_store:get(username);
		if type(rec) == "table" and not account_expired(rec, now) then
			accounts[username] = rec;
		else
			account_store:set(username, nil);
		end
	end
	if not keys or not users then
		module:log("warn", "This storage cannot list its records: usage reports and introductions from before this start are not restored");
	end

	-- COMPAT: before, all of it was one record, rewritten on every change,
	-- and it also held reports and registrations of invites the bot had
	-- not minted, which cannot be told apart any more. Pending
	-- introductions (all the bot's) move over; the rest is dropped: the
	-- bot also checks its tokens over c2s now and then, and finds those
	-- registrations that way.
	local old_store = module:open_store("invitebot");
	local old = old_store:get(nil);
	if type(old) == "table" then
		local moved = 0;
		for username, intro in pairs(old.introduced or {}) do
			if type(intro) == "table" and not accounts[username] then
				accounts[username] = { introduced = intro };
				if account_expired(accounts[username], now) then
					accounts[username] = nil;
				else
					save_account(username);
					moved = moved + 1;
				end
			end
		end
		old_store:set(nil, nil);
		module:log("info", "Converted the old invitebot state record: %d pending introduction(s) kept, %d queued report(s) dropped",
			moved, #(old.reports or {}));
	end
end

load_state();
module:add_timer(sweep_interval, sweep);

-- A deleted account keeps no record here (Prosody purges its storage).
module:hook("user-deleted", function (event)
	if accounts[event.username] then
		accounts[event.username] = nil;
		save_account(event.username);
	end
end);

-- Single use -----------------------------------------------------------------

local function refuse_registration(event, why)
	event.allowed = false;
	event.error = { type = "cancel", condition = "forbidden", text = bad_token_text };
	-- COMPAT: what mod_register_ibr read before util.error.
	event.error_type, event.error_condition, event.reason = "cancel", "forbidden", bad_token_text;
	log_refused_registration("Refused registration of %s: %s", tostring(event.username), why);
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
	for i, r in ipairs(reports) do
		if r.id == id then
			remove_report_at(i);
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
	local now = os.time();
	for i = #reports, 1, -1 do
		if now - reports[i].at >= report_max_age and not in_flight[reports[i].id] then
			remove_report_at(i);
		end
	end
	module:log("debug", "Flushing %d usage report(s)", #reports);
	for _, r in ipairs(reports) do
		if not in_flight[r.id] then
			send_report(r);
		end
	end
end

-- After mod_invites_register (priority 0) has used the invite. Only
-- registrations with the bot's invites are recorded and reported: the
-- component has no business knowing of the others.
module:hook("user-registered", function (event)
	local session = event.session;
	local invite = event.validated_invite or (session and session.validated_invite);
	if not invite then
		return;
	end
	if session then
		session.invitebot_registered = true;
	end
	if not minted_by_bot(invite) then
		module:log("debug", "%s registered with an invite the bot did not mint: not reported", tostring(event.username));
		return;
	end
	local now = os.time();
	accounts[event.username] = { registered = now };
	save_account(event.username);
	if component then
		add_report({
			id = new_id(), token = invite.token, at = now,
			jid = jid_util.join(event.username, module.host),
		});
		flush();
	end
end, -10);

-- A password reset (Prosody 13) spends the stream's invite as well.
module:hook("user-password-reset", function (event)
	local session = event.session;
	if session and (event.validated_invite or session.validated_invite) then
		session.invitebot_registered = true;
	end
end, -10);

-- The component -----------------------------------------------------------------

-- invitebot_component counts once it names a Component of this server.
-- Hosts later in the configuration are activated after this one, so at
-- start the check waits for them: timers run only once start-up is over,
-- and a component activated later (a configuration reload) is checked as
-- it comes.
local function check_component()
	if component or not wanted_component then
		return;
	end
	local host = prosody.hosts[wanted_component];
	if not host or host.type ~= "component" then
		module:log("error", "invitebot_component = %q is not a Component of this server (%s): nothing is reported to it "
			.. "or accepted from it. Set it to the bot's component JID, the name of its Component section",
			wanted_component, host and "it is a VirtualHost" or "no such host here");
		return;
	end
	component = wanted_component;
	module:log("info", "Enforcing one account per invite, reporting registrations to %s", component);
	-- Deliver what waited while Prosody was down, once the component is back.
	if #reports > 0 then
		module:add_timer(retry_interval, function () flush(); end);
	end
end

if wanted_component then
	if prosody.hosts[wanted_component] then
		check_component();
	else
		module:add_timer(0, check_component);
	end
	module:hook_global("host-activated", function (host)
		if host == wanted_component then
			check_component();
		end
	end);
	module:hook_global("host-deactivated", function (host)
		if host == component then
			module:log("warn", "Component %s is gone: nothing is reported or accepted until it is back", host);
			component = nil;
		end
	end);
end

-- Discovery ----------------------------------------------------------------------

module:hook("iq-get/host/" .. NS .. ":status", function (event)
	if not from_component(event.stanza) then
		return refuse_sender(event);
	end
	event.origin.send(st.reply(event.stanza)
		:tag("status", { xmlns = NS, version = VERSION, queued = tostring(#reports) }));
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
	-- Read from storage itself: get_account_invite_info hides an expired
	-- token, which Prosody keeps all the same, and every token it holds
	-- makes its minting slower.
	local info = token_store:get(nil, token);
	if not info then
		-- Unknown or used: nothing is left, and deleting is idempotent.
		origin.send(st.reply(stanza));
		return true;
	end
	if not minted_by_bot(info) then
		-- forbidden, not item-not-found: the token exists (anybody can
		-- find that out at preauth), and a component told it was not
		-- found might conclude it is revoked while it stays valid.
		log_refused_request("Refused to delete invite %s for %s: the bot did not mint it", redact(token), component);
		origin.send(st.error_reply(stanza, "auth", "forbidden", "This invite was not minted by this component"));
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

-- Expired tokens -----------------------------------------------------------------

-- Prosody never removes an expired token from its storage: the bot deletes
-- the token of each invite that expires, and this removes the ones that
-- were left (by bot versions that did not, or while the bot was away),
-- when the component asks and once a day.
local function purge_expired_tokens(why)
	local all, err = token_list:get(nil);
	if all == nil and err then
		return nil, err;
	end
	local now, gone, n = os.time(), {}, 0;
	for token, invite in pairs(all or {}) do
		if type(invite) == "table" and type(invite.expires) == "number" and invite.expires < now
			and minted_by_bot(invite) then
			gone[token] = token_store.remove;
			n = n + 1;
		end
	end
	if n == 0 then
		return 0;
	end
	-- One write: the internal storage rewrites the whole token file on
	-- every change.
	local ok, serr = token_store:set_keys(nil, gone);
	if not ok then
		return nil, serr;
	end
	module:log("info", "Deleted %d expired invite token(s) of the bot (%s)", n, why);
	return n;
end

module:hook("iq-set/host/" .. NS .. ":purge", function (event)
	local origin, stanza = event.origin, event.stanza;
	if not from_component(stanza) then
		return refuse_sender(event);
	end
	local n, err = purge_expired_tokens("asked by " .. component);
	if not n then
		module:log("error", "Could not delete expired invite tokens: %s", tostring(err));
		origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
		return true;
	end
	origin.send(st.reply(stanza):tag("purged", { xmlns = NS, count = tostring(n) }));
	return true;
end);

-- The bot's tokens minted since a time, unexpired: when the answer to a
-- mint was lost (the link dropped, the server answered too late), the bot
-- asks which tokens it does not know and deletes them, so that no token
-- stays valid here that nobody was handed. At most max_minted, newest first.
local max_minted = 500;

module:hook("iq-get/host/" .. NS .. ":minted", function (event)
	local origin, stanza = event.origin, event.stanza;
	if not from_component(stanza) then
		return refuse_sender(event);
	end
	local since = tonumber(stanza.tags[1].attr.since);
	if not since then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "since missing"));
		return true;
	end
	local all, err = token_list:get(nil);
	if all == nil and err then
		module:log("error", "Could not list invite tokens: %s", tostring(err));
		origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
		return true;
	end
	local now, found = os.time(), {};
	for token, invite in pairs(all or {}) do
		if type(invite) == "table" and type(invite.created_at) == "number" and invite.created_at >= since
			and type(invite.expires) == "number" and invite.expires > now and minted_by_bot(invite) then
			table.insert(found, { token = token, created = invite.created_at });
		end
	end
	table.sort(found, function (a, b) return a.created > b.created; end);
	local reply = st.reply(stanza):tag("minted", { xmlns = NS });
	for i = 1, math.min(#found, max_minted) do
		reply:tag("token", { created = tostring(found[i].created) }):text(found[i].token):up();
	end
	origin.send(reply);
	return true;
end);

module:add_timer(sweep_interval, function ()
	local _, err = purge_expired_tokens("daily");
	if err then
		module:log("warn", "Could not delete expired invite tokens: %s", tostring(err));
	end
	return sweep_interval;
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
	-- Only accounts that registered with one of the bot's invites lately:
	-- the component must not be able to edit the rosters of everyone else.
	local rec = accounts[username];
	if not rec or not rec.registered or os.time() - rec.registered >= introduce_window
		or not usermanager.user_exists(username, host) then
		origin.send(st.error_reply(stanza, "cancel", "item-not-found", "no recent registration with an invite of this component"));
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
	accounts[username] = { introduced = { contact = contact, at = os.time() } };
	save_account(username);
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
	local rec = username and host == module.host and accounts[username];
	local intro = rec and rec.introduced;
	if not intro or intro.contact ~= from or account_expired(rec, os.time()) then
		return;
	end
	accounts[username] = nil;
	save_account(username);
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

-- Suspension ---------------------------------------------------------------------
--
-- The component may suspend an account of this host, and lift the
-- suspension again: the account cannot log in, its sessions end, and
-- nothing of it is deleted. Where Prosody can disable accounts itself
-- (13, with an auth provider that supports it) that is used, so the
-- refusal happens at SASL and survives unloading this module; otherwise
-- (0.12) this module keeps the list and refuses the suspended accounts
-- their resource at bind, which no client gets past. The list is kept
-- either way, so that an unsuspend undoes what its suspend did and nothing
-- else (an account an admin disabled by hand stays disabled).
--
-- The component is refused accounts of other hosts, accounts that do not
-- exist and the host's admins: which accounts its invites created is for
-- the bot to know, who the admins are is for this server.

-- username -> { at = time, reason = text, disabled = true when Prosody's
-- own disabling was used }. Prosody purges it with the account.
local suspended_store = module:open_store("invitebot_suspended");

local suspension_text = "This account is suspended";

-- The suspension record of username, or nil.
local function suspension_of(username)
	local rec = suspended_store:get(username);
	if type(rec) == "table" then
		return rec;
	end
	return nil;
end

-- Whether the local account is an admin of this host, on 0.12 (is_admin)
-- and 13 (roles; is_admin there only warns).
local function account_is_admin(username)
	if usermanager.get_user_role then
		local role = usermanager.get_user_role(username, module.host);
		if role and (role.name == "prosody:admin" or role.name == "prosody:operator") then
			return true;
		end
		return false;
	end
	return usermanager.is_admin(jid_util.join(username, module.host), module.host);
end

-- The username of a suspend or unsuspend request, or nil and the error to
-- send.
local function suspension_target(stanza)
	local account = jid_util.prep(stanza.tags[1].attr.jid);
	local username, host, resource;
	if account then
		username, host, resource = jid_util.split(account);
	end
	if not username or host ~= module.host or resource then
		return nil, st.error_reply(stanza, "modify", "bad-request", "jid must be an account of " .. module.host);
	end
	if is_bot(account) then
		return nil, st.error_reply(stanza, "auth", "forbidden", "The bot's own account cannot be suspended");
	end
	if account_is_admin(username) then
		log_refused_request("Refused to suspend %s for %s: an admin of this host", account, tostring(component));
		return nil, st.error_reply(stanza, "auth", "forbidden", "An admin of this host cannot be suspended");
	end
	return username;
end

-- Ends every session of username: a suspension takes effect at once.
local function end_sessions(username)
	local user = prosody.hosts[module.host].sessions[username];
	if not user or not user.sessions then
		return 0;
	end
	local n = 0;
	for _, session in pairs(user.sessions) do
		session:close({ condition = "not-authorized", text = suspension_text });
		n = n + 1;
	end
	return n;
end

-- suspension_request checks who asks and for which account; it answers a
-- refused request itself and returns nil then.
local function suspension_request(event)
	if not from_component(event.stanza) then
		refuse_sender(event);
		return nil;
	end
	local username, err_reply = suspension_target(event.stanza);
	if not username then
		event.origin.send(err_reply);
	end
	return username;
end

module:hook("iq-set/host/" .. NS .. ":suspend", function (event)
	local origin, stanza = event.origin, event.stanza;
	local username = suspension_request(event);
	if not username then
		return true;
	end
	if not usermanager.user_exists(username, module.host) then
		origin.send(st.error_reply(stanza, "cancel", "item-not-found", "No such account"));
		return true;
	end
	local rec = suspension_of(username);
	if not rec then
		rec = { at = os.time(), reason = stanza.tags[1].attr.reason };
		if usermanager.disable_user then
			local ok = usermanager.disable_user(username, module.host, { reason = rec.reason, by = component });
			rec.disabled = ok and true or nil;
		end
		local ok, err = suspended_store:set(username, rec);
		if not ok then
			if rec.disabled then
				usermanager.enable_user(username, module.host);
			end
			module:log("error", "Could not record the suspension of %s: %s", username, tostring(err));
			origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
			return true;
		end
	end
	local ended = end_sessions(username);
	module:log("info", "Suspended %s@%s at the request of %s (%s; %d session(s) ended)", username, module.host,
		component, rec.disabled and "account disabled" or "login refused by this module", ended);
	origin.send(st.reply(stanza):tag("suspended", { xmlns = NS, how = rec.disabled and "disabled" or "blocked" }));
	return true;
end);

module:hook("iq-set/host/" .. NS .. ":unsuspend", function (event)
	local origin, stanza = event.origin, event.stanza;
	local username = suspension_request(event);
	if not username then
		return true;
	end
	local rec = suspension_of(username);
	if not rec then
		-- Not suspended by the bot (or lifted already): nothing to undo,
		-- and an account disabled by an admin stays disabled.
		origin.send(st.reply(stanza));
		return true;
	end
	if rec.disabled and usermanager.enable_user then
		local ok, err = usermanager.enable_user(username, module.host);
		if not ok then
			module:log("error", "Could not enable %s again: %s", username, tostring(err));
			origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
			return true;
		end
	end
	suspended_store:set(username, nil);
	module:log("info", "Lifted the suspension of %s@%s at the request of %s", username, module.host, component);
	origin.send(st.reply(stanza));
	return true;
end);

-- A suspended account gets no resource: without one a client can do
-- nothing, and the stream is closed right after the refusal.
module:hook("pre-resource-bind", function (event)
	local session = event.session;
	if not session.username or not suspension_of(session.username) then
		return;
	end
	event.error = { type = "auth", condition = "not-authorized", text = suspension_text };
	module:log("info", "Refused a login of suspended account %s@%s", session.username, module.host);
	module:add_timer(0, function ()
		session:close({ condition = "not-authorized", text = suspension_text });
	end);
	return false;
end, 100);
