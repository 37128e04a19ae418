"""Projects and pools, as a requester sets them up: projects and answer options, pools
and their settings, budget review, launch and close, data uploads (TSV, images, ZIP),
control tasks, and a pool's progress."""
