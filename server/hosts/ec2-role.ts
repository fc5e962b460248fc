// SSHCA_EC2_ROLE's form, shared by the server's configuration and
// `sshca-setup policy --ec2-role` (which must not load the EC2 client).

/** SSHCA_EC2_ROLE: a role ARN with `{account}` written literally, filled with each instance's account. */
export const EC2_ROLE_TEMPLATE = /^arn:(aws|aws-us-gov|aws-cn):iam::\{account\}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
