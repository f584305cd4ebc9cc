-- invitebot: what Prosody needs, to merge into /etc/prosody/prosody.cfg.lua
-- (or a file under /etc/prosody/conf.d/). Replace example.org with your
-- domain and invites.example.org with xmpp.component from
-- /etc/invitebot/config.yaml. Then: prosodyctl check config && prosodyctl reload

-- Global section (before the first VirtualHost):
modules_enabled = {
    -- ... your modules, plus:
    "register";          -- XEP-0077 in-band registration (used with a token only)
    "invites";           -- token storage
    "invites_adhoc";     -- the urn:xmpp:invite#create-account command the bot runs
    "invites_register";  -- XEP-0445 preauth: registration with a token
}
allow_registration = false          -- no open sign-ups ...
registration_invite_only = true     -- ... but a valid invite token may register

component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }   -- the component link is not encrypted: keep it on loopback

-- mod_invitebot, the Prosody module shipped with invitebot (optional, and
-- recommended): one account per invite whatever the client does, usage
-- reported at once, cancelled tokens deleted, new accounts introduced to
-- their inviter. Without it the bot works, with the limits docs/security.md names.
plugin_paths = { "/usr/share/invitebot/prosody" }

VirtualHost "example.org"
    -- The component may run the server's invite command only as an admin
    -- of the host. Keep your existing admins in this list too.
    admins = { "invites.example.org" }
    -- mod_invitebot, on the host whose accounts the invites create; it
    -- serves and trusts this component only.
    modules_enabled = { "invitebot" }
    invitebot_component = "invites.example.org"

Component "invites.example.org"
    -- The secret the package generated; print it with
    --   sudo cat /etc/invitebot/component-secret
    -- Keep this file readable by root and prosody only.
    component_secret = "paste the content of /etc/invitebot/component-secret here"
