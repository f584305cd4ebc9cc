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

-- The Prosody module shipped with invitebot, if your version of the package
-- has one (ls /usr/share/invitebot/prosody/):
-- plugin_paths = { "/usr/share/invitebot/prosody" }

VirtualHost "example.org"
    -- The component may run the server's invite command only as an admin
    -- of the host. Keep your existing admins in this list too.
    admins = { "invites.example.org" }

Component "invites.example.org"
    -- The secret the package generated; print it with
    --   sudo cat /etc/invitebot/component-secret
    -- Keep this file readable by root and prosody only.
    component_secret = "paste the content of /etc/invitebot/component-secret here"
