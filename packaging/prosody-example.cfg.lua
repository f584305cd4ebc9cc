-- invitebot: what Prosody needs. Copy this file to
-- /etc/prosody/conf.d/invitebot.cfg.lua (Debian's prosody.cfg.lua ends with
-- Include "conf.d/*.cfg.lua"; do not paste it after a VirtualHost line of
-- prosody.cfg.lua, where its global lines would belong to that host).
-- Replace example.org with your domain and invites.example.org with
-- xmpp.component from /etc/invitebot/config.yaml, set the secret below.
-- Then: prosodyctl check config && systemctl restart prosody
-- (a reload loads no new module, host, port or plugin folder).
--
-- It adds to your configuration and replaces none of its lists: the modules
-- are enabled on the VirtualHost, which adds them to the global
-- modules_enabled of prosody.cfg.lua (a global modules_enabled here would
-- replace that whole list, mod_tls and mod_saslauth with it). If another
-- file already gives VirtualHost "example.org" a modules_enabled of its own,
-- add these modules to that list instead: the later list replaces the
-- earlier one.

-- The component link (global options, read nowhere else; if prosody.cfg.lua
-- sets them already, for another component, merge the two):
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }   -- the component link is not encrypted: keep it on loopback

-- mod_invitebot, the Prosody module shipped with invitebot (optional, and
-- recommended): one account per invite whatever the client does, usage
-- reported at once, cancelled tokens deleted, new accounts introduced to
-- their inviter. Without it the bot works, with the limits docs/security.md
-- names: then drop this line and "invitebot" and invitebot_component below.
-- plugin_paths replaces the list in prosody.cfg.lua: this one keeps
-- Debian's /usr/local/lib/prosody/modules; add any other folder yours lists.
plugin_paths = { "/usr/local/lib/prosody/modules", "/usr/share/invitebot/prosody" }

VirtualHost "example.org"
    -- Added, on this host, to the global modules_enabled:
    modules_enabled = {
        "register";          -- XEP-0077 in-band registration (used with a token only)
        "invites";           -- token storage
        "invites_adhoc";     -- the urn:xmpp:invite#create-account command the bot runs
        "invites_register";  -- XEP-0445 preauth: registration with a token
        "invitebot";         -- mod_invitebot, on the host whose accounts the invites create
    }
    allow_registration = false          -- no open sign-ups ...
    registration_invite_only = true     -- ... but a valid invite token may register
    -- The component may run the server's invite command only as an admin
    -- of the host. A VirtualHost's admins add to the global ones; if another
    -- file gives this VirtualHost an admins list of its own, add the
    -- component there.
    admins = { "invites.example.org" }
    -- mod_invitebot serves and trusts this component only.
    invitebot_component = "invites.example.org"

Component "invites.example.org"
    -- The secret the package generated; print it with
    --   sudo cat /etc/invitebot/component-secret
    -- Keep this file readable by root and prosody only.
    component_secret = "paste the content of /etc/invitebot/component-secret here"
