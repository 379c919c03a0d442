package updateclient

// LwM2M update states (object 10252 resource "state"), as the client's
// monitor reports them (update-client-common/arm_uc_public.h).
const (
	StateUninitialised            = 0
	StateIdle                     = 1
	StateProcessingManifest       = 2
	StateAwaitingDownloadApproval = 3
	StateDownloadingUpdate        = 4
	StateDownloadedUpdate         = 5
	StateAwaitingInstallApproval  = 6
	StateInstallingUpdate         = 7
	StateRebooting                = 8
)

// LwM2M update results (arm_uc_update_result_t) the client reports.
const (
	ResultSucceeded    = 100
	ResultNetworkError = 101
	// ResultNonspecificSystemError is what the hub reports for an error
	// its handler has no case for (arm_uc_public.h:214).
	ResultNonspecificSystemError  = 103
	ResultManifestIntegrityFailed = 207
	ResultCertificateNotFound     = 208
	ResultInvalidSignature        = 210
	ResultUnsupportedManifest     = 214
	ResultWrongVendorID           = 215
	ResultWrongClassID            = 216
	ResultInvalidManifestSize     = 217
	ResultInvalidManifestFormat   = 218
	ResultInvalidCryptoMode       = 219
	ResultRollbackProtection      = 221
	ResultInsufficientStorage     = 225
	ResultFetcherNoRoute          = 302
	ResultFetcherConnectionLoss   = 306
	// ResultFetcherAuthorizationRejected and
	// ResultWriterAuthorizationRejected are the application's refusal of
	// the download and of the install (arm_uc_public.h:271, :304).
	ResultFetcherAuthorizationRejected = 315
	ResultWriterAuthorizationRejected  = 511
	ResultWriterWriteFailure           = 503
	ResultWriterHashError              = 504
	ResultWriterActivationFailure      = 505
	resultNone                         = 0
)

var resultNames = map[int]string{
	ResultSucceeded:                    "UPDATE_SUCCEEDED",
	ResultNetworkError:                 "UPDATE_NONSPECIFIC_NETWORK_ERROR",
	ResultManifestIntegrityFailed:      "MANIFEST_INTEGRITY_CHECK_FAILED",
	ResultCertificateNotFound:          "MANIFEST_CERTIFICATE_NOT_FOUND",
	ResultInvalidSignature:             "MANIFEST_INVALID_SIGNATURE",
	ResultUnsupportedManifest:          "MANIFEST_UNSUPPORTED_MANIFEST_VERSION",
	ResultWrongVendorID:                "MANIFEST_WRONG_VENDOR_ID",
	ResultWrongClassID:                 "MANIFEST_WRONG_CLASS_ID",
	ResultInvalidManifestSize:          "MANIFEST_INVALID_MANIFEST_SIZE",
	ResultInvalidManifestFormat:        "MANIFEST_INVALID_MANIFEST_FORMAT",
	ResultInvalidCryptoMode:            "MANIFEST_INVALID_CRYPTO_MODE",
	ResultRollbackProtection:           "MANIFEST_ROLLBACK_PROTECTION",
	ResultInsufficientStorage:          "MANIFEST_INSUFFICIENT_STORAGE_SPACE",
	ResultFetcherNoRoute:               "FETCHER_NO_ROUTE_AVAILABLE",
	ResultFetcherConnectionLoss:        "FETCHER_NETWORK_CONNECTION_LOSS",
	ResultFetcherAuthorizationRejected: "FETCHER_AUTHORIZATON_REJECTED",
	ResultWriterAuthorizationRejected:  "WRITER_AUTHORIZATON_REJECTED",
	ResultWriterWriteFailure:           "WRITER_WRITE_FAILURE",
	ResultWriterHashError:              "WRITER_HASH_ERROR",
	ResultWriterActivationFailure:      "WRITER_ACTIVATION_FAILURE",
}

// ResultName returns the name of a result code without its
// ARM_UC_UPDATE_RESULT_ prefix, or "" for one the client never reports.
func ResultName(code int) string { return resultNames[code] }
