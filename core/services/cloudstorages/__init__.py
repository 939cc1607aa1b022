"""Cloud storages: the rows, their sealed credentials, bucket listings, and tasks whose media
stay in a bucket."""
